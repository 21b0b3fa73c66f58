"""Judging many instances: every unfinished instance of an env (and the latest completed ones
of each workflow), or a set of export documents; the verdicts counted per workflow class.

The store is opened read-only when it can be (``open_read_only``): a check never writes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from zenaton_runtime.check.document import Document
from zenaton_runtime.check.replayer import BROKEN, FAILING, Verdict, replay_instance
from zenaton_runtime.models import UNFINISHED, Instance, InstanceStatus, JournalEntry, Kind
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.store import Store, open_store


def open_read_only(url: str) -> Store:
    """The store at ``url``, opened so that it cannot be written (SQLite: ``mode=ro``). Other
    backends are opened as usual; the check calls only their reads."""
    if url.startswith("sqlite:///"):
        from zenaton_runtime.store.sqlite_readonly import ReadOnlySQLiteStore

        return ReadOnlySQLiteStore(url[len("sqlite:///") :])
    return open_store(url)


@dataclass
class ClassReport:
    """The verdicts on the instances of one workflow class."""

    name: str
    checked: int = 0
    clean: int = 0
    verdicts: list[Verdict] = field(default_factory=list)  # the broken and still failing ones

    @property
    def broken(self) -> int:
        return sum(v.outcome == BROKEN for v in self.verdicts)

    @property
    def failing(self) -> int:
        return sum(v.outcome == FAILING for v in self.verdicts)

    def add(self, verdict: Verdict) -> None:
        self.checked += 1
        if verdict.outcome == BROKEN or verdict.outcome == FAILING:
            self.verdicts.append(verdict)
        else:
            self.clean += 1


@dataclass
class Report:
    """A whole check: what was checked (``where``: the env, or the files), per class."""

    where: str
    classes: dict[str, ClassReport] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, verdict: Verdict) -> None:
        name = verdict.instance.name
        if name not in self.classes:
            self.classes[name] = ClassReport(name)
        self.classes[name].add(verdict)

    @property
    def checked(self) -> int:
        return sum(c.checked for c in self.classes.values())

    @property
    def broken(self) -> int:
        return sum(c.broken for c in self.classes.values())

    @property
    def failing(self) -> int:
        return sum(c.failing for c in self.classes.values())

    def view(self) -> dict[str, Any]:
        """What ``zenaton check --json`` prints."""
        return {
            "checked": self.checked,
            "clean": self.checked - self.broken - self.failing,
            "broken": self.broken,
            "still_failing": self.failing,
            "seconds": round(self.seconds, 3),
            "classes": [
                {
                    "name": c.name,
                    "checked": c.checked,
                    "clean": c.clean,
                    "broken": c.broken,
                    "still_failing": c.failing,
                    "instances": [v.view() for v in c.verdicts],
                }
                for c in sorted(self.classes.values(), key=lambda c: c.name)
            ],
        }


Journals = Callable[[Instance], list[JournalEntry]]


def check_store(
    store: Store,
    codec: Codec,
    env: str,
    *,
    now: float,
    completed: int = 0,
    name: str | None = None,
    time_limit: float | None = None,
) -> Report:
    """Every unfinished workflow instance of ``env`` (of workflow ``name``, if given) replayed
    against the code ``codec`` loads; with ``completed``, also the latest that many completed
    instances of each workflow."""
    started = time.perf_counter()
    report = Report(f"env {env}")
    for instance in _instances(store, env, completed, name):
        report.add(replay_instance(codec, instance, store.journal(instance.id), now=now, time_limit=time_limit))
    report.seconds = time.perf_counter() - started
    return report


def _instances(store: Store, env: str, completed: int, name: str | None) -> Iterable[Instance]:
    unfinished: list[Instance] = []
    for status in UNFINISHED:
        unfinished += store.list_instances(env=env, name=name, status=status, kind=Kind.WORKFLOW.value)
    unfinished.reverse()  # oldest first, insertion order among those created at the same time
    unfinished.sort(key=lambda i: i.created_at)
    yield from unfinished
    if completed <= 0:
        return
    names = sorted({i.name for i in unfinished} | set(_completed_names(store, env, name)))
    for workflow in names:
        yield from store.list_instances(
            env=env, name=workflow, status=InstanceStatus.COMPLETED, kind=Kind.WORKFLOW.value, limit=completed
        )


def _completed_names(store: Store, env: str, name: str | None) -> list[str]:
    return [
        c.name
        for c in store.instance_counts(env)
        if c.kind is Kind.WORKFLOW and c.status is InstanceStatus.COMPLETED and (name is None or c.name == name)
    ]


def check_documents(documents: list[Document], codec: Codec, *, now: float, time_limit: float | None = None) -> Report:
    """Each export document's instance replayed against the code ``codec`` loads."""
    started = time.perf_counter()
    report = Report(", ".join(d.source for d in documents))
    for document in documents:
        verdict = replay_instance(codec, document.instance, document.journal, now=now, time_limit=time_limit)
        report.add(dataclasses.replace(verdict, source=document.source))
    report.seconds = time.perf_counter() - started
    return report

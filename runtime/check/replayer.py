"""One instance replayed against the current code, and what that says of it.

The run is rebuilt as the engine rebuilds it (``replay.rebuild.replay_journal``): the workflow
decoded from the instance's data, ``handle()`` started, every journaled input delivered in
order. Nothing runs but the workflow's own code, which only decides; what it prints is dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zenaton.abstracts.workflow import Workflow
from zenaton_runtime.models import Instance, InstanceStatus, JournalEntry
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.replay import Decision, DecisionKind, NonDeterminismError, WorkflowRun
from zenaton_runtime.replay.journal import recorded_requests
from zenaton_runtime.replay.rebuild import replay_journal
from zenaton_runtime.timing import waits

CLEAN, BROKEN, FAILING = "clean", "broken", "still failing"


@dataclass
class Rebuilt:
    """A run rebuilt from a journal: the run (None if it could not be built), what it decided
    beyond the journal, and the error that stopped it, if any. Close it when done."""

    run: WorkflowRun | None
    decisions: list[Decision]
    error: BaseException | None

    def close(self) -> None:
        if self.run is not None:
            with _silenced():
                self.run.close()


def rebuild(
    codec: Codec,
    instance: Instance,
    journal: list[JournalEntry],
    *,
    now: float,
    time_limit: float | None = None,
    workflow: Workflow | None = None,
) -> Rebuilt:
    """``instance``'s run rebuilt from ``journal`` by the current code (``workflow``: the object to
    run instead of the one decoded from the instance's data)."""
    try:
        if workflow is None:
            workflow = codec.decode(instance.data)
    except Exception as error:  # the class is gone or renamed, its data no longer fits
        return Rebuilt(None, [], error)
    run = WorkflowRun(workflow, instance.id, recorded_requests(journal), waits.fire_at, time_limit)
    try:
        with _silenced():
            decisions = replay_journal(run, journal, now, codec.decode)
    except Exception as error:  # a journaled result or event the current code cannot read
        Rebuilt(run, [], None).close()
        return Rebuilt(None, [], error)
    failed = next((d for d in decisions if d.kind is DecisionKind.FAIL), None)
    return Rebuilt(run, decisions, failed.error if failed is not None else None)


@dataclass(frozen=True)
class Verdict:
    """What replaying one instance said: ``clean``, ``broken`` (the daemon would pause it with
    an error it does not have now) or ``still failing`` (paused with an error, which the current
    code raises again)."""

    instance: Instance
    outcome: str
    position: int | None = None  # where the code and the journal part
    recorded: str | None = None  # what the journal holds there ("task SendWelcomeEmail")
    requested: str | None = None  # what the code asks for there
    error: str | None = None  # "Class: message", for a failure other than non-determinism
    source: str | None = None  # the export document it came from, if any

    @property
    def broken(self) -> bool:
        return self.outcome == BROKEN

    def reason(self) -> str:
        """One line: where and how the code and the journal part, or the error."""
        if self.recorded is not None:
            return f"position {self.position}: the journal holds {self.recorded}, the code asks for {self.requested}"
        return self.error or ""

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.instance.id,
            "name": self.instance.name,
            "version": self.instance.version,
            "custom_id": self.instance.custom_id,
            "status": self.instance.status.value,
            "outcome": self.outcome,
            "position": self.position,
            "journal": self.recorded,
            "code": self.requested,
            "error": self.error,
        }
        if self.source is not None:
            view["file"] = self.source
        return view


def judge(instance: Instance, error: BaseException | None, source: str | None = None) -> Verdict:
    """The verdict on an instance whose replay stopped on ``error`` (None: it did not)."""
    if error is None:
        return Verdict(instance, CLEAN, source=source)
    if isinstance(error, NonDeterminismError):
        return Verdict(instance, BROKEN, error.position, error.recorded, error.requested, source=source)
    described = f"{type(error).__name__}: {_message(error)}"
    position = getattr(error, "position", None)
    position = position if isinstance(position, int) and not isinstance(position, bool) else None
    outcome = FAILING if fails_as_before(instance, error) else BROKEN
    return Verdict(instance, outcome, position, error=described, source=source)


def replay_instance(
    codec: Codec, instance: Instance, journal: list[JournalEntry], *, now: float, time_limit: float | None = None
) -> Verdict:
    rebuilt = rebuild(codec, instance, journal, now=now, time_limit=time_limit)
    try:
        return judge(instance, rebuilt.error)
    finally:
        rebuilt.close()


def fails_as_before(instance: Instance, error: BaseException) -> bool:
    """The instance is paused with an error of this class already (the code fails as it did)."""
    if instance.status is not InstanceStatus.PAUSED or not instance.error:
        return False
    try:
        stored = json.loads(instance.error).get("class")
    except (ValueError, AttributeError):
        return False
    qualname = type(error).__qualname__
    return isinstance(stored, str) and (stored == qualname or stored.endswith("." + qualname))


def _message(error: BaseException) -> str:
    try:
        return str(error).splitlines()[0] if str(error) else ""
    except Exception:  # a user exception whose __str__ raises
        return "<its message cannot be shown>"


class _Discard(io.TextIOBase):
    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """What the workflow's code prints while it replays goes nowhere (the daemon would log it)."""
    sink = _Discard()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield

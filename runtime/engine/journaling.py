"""One instance's share of a step: its state as the step changes it, and its journal appends.

Both activations (workflow and standalone task) keep their instance's state here and write
through it: journal entries carry the properties that changed, an error stops the instance,
and ``finish`` writes the instance's row once, at the end of its activation.
"""

from __future__ import annotations

import json
import math
import traceback as _traceback
from typing import Any

from zenaton_runtime.engine.context import StepContext
from zenaton_runtime.models import Entry, Instance, InstanceStatus, JournalEntry, Kind, LogLine
from zenaton_runtime.pool.attempts import Outcome, error_class_name
from zenaton_runtime.project.serializer import properties_of
from zenaton_runtime.replay import WorkflowRun
from zenaton_runtime.store.ops import UNSET, Batch, NewEntry

RUNNING, PAUSED = InstanceStatus.RUNNING, InstanceStatus.PAUSED


def error_info(error: BaseException, traceback: str | None = None) -> dict[str, Any]:
    """The error as the journal keeps it; never raises, whatever the user's exception does."""
    try:
        message = str(error)
    except Exception:  # a user exception whose __str__ raises
        message = f"<{type(error).__name__} whose message cannot be shown>"
    text = traceback or "".join(_traceback.format_exception(type(error), error, error.__traceback__))
    info: dict[str, Any] = {"class": error_class_name(type(error)), "message": message, "traceback": text}
    for attr in ("position", "recorded", "requested"):
        value = getattr(error, attr, None)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            info[attr] = value
    return info


def outcome_data(outcome: Outcome, attempt: int, **extra: Any) -> str:
    """A TASK_COMPLETED or TASK_FAILED entry's data: the attempt, its output and times, the task
    as ``handle()`` left it (only when that changed it), ``extra``, and the result when ok. The
    encoded task and result are embedded as they are, never encoded twice."""
    times = f'"started_at": {_number(outcome.started_at)}, "finished_at": {_number(outcome.finished_at)}'
    task = f', "task": {outcome.changed_task}' if outcome.changed_task else ""
    if outcome.ok and not extra:  # the common case, built without a dict
        return (
            f'{{"attempt": {int(attempt)}, "stdout": {_text(outcome.stdout)}, '
            f'"stderr": {_text(outcome.stderr)}, {times}{task}, "result": {outcome.result or "null"}}}'
        )
    fields = {"attempt": attempt, "stdout": outcome.stdout, "stderr": outcome.stderr, **extra}
    text = json.dumps(fields)[:-1] + ", " + times + task
    if outcome.ok:
        return text + ', "result": ' + (outcome.result or "null") + "}"
    return text + "}"


def _text(value: str) -> str:
    return json.dumps(value) if value else '""'


def _number(value: float | None) -> str:
    """A time as JSON: its repr when finite, else null."""
    if (type(value) is float or type(value) is int) and math.isfinite(value):  # not a bool: True is no time
        return repr(value)
    return "null"


class StepJournal:
    """The instance as this step leaves it; everything goes to ``batch``, nothing commits."""

    __slots__ = (
        "_pending_properties",
        "appended",
        "batch",
        "ctx",
        "error",
        "id",
        "instance",
        "kept",
        "now",
        "properties",
        "run",
        "status",
    )

    def __init__(self, ctx: StepContext, instance: Instance, batch: Batch) -> None:
        self.ctx = ctx
        self.instance = instance
        self.id = instance.id
        self.batch = batch
        self.now = ctx.now
        self.status = instance.status
        self.error: Any = UNSET
        self.run: WorkflowRun | None = None  # a workflow's run, once an input needs it
        self.appended: list[NewEntry] = []
        self.kept: list[JournalEntry] | None = None  # the stored journal once a rewind cut it
        self.properties = instance.properties
        self._pending_properties: str | None = None

    def append(
        self, type: Entry, position: int | None = None, name: str | None = None, data: str | None = None
    ) -> None:
        entry = NewEntry(self.id, type, position, name, data, self._pending_properties)
        self._pending_properties = None
        self.appended.append(entry)
        self.batch.append(entry)

    def as_entry(self, entry: NewEntry) -> JournalEntry:
        return JournalEntry(self.id, 0, entry.type, entry.position, entry.name, entry.data, entry.properties, self.now)

    def stored_journal(self) -> list[JournalEntry]:
        """The journal as the store will hold it before this activation's own appends."""
        return list(self.kept) if self.kept is not None else self.ctx.reads.journal(self.id)

    def snapshot(self) -> None:
        """Note the workflow's properties if they changed; the next entry carries them."""
        if self.run is None:
            return
        try:
            encoded = self.ctx.codec.encode(properties_of(self.run.workflow), self.instance.name)
        except Exception as error:
            self.pause_with_error(error_info(error))
            return
        if encoded != self.properties:
            self.properties = encoded
            self._pending_properties = encoded

    def reset_properties(self, properties: str | None) -> None:
        """The properties a rewind goes back to; nothing pending is carried over."""
        self.properties, self._pending_properties = properties, None

    def pause_with_error(self, error: dict[str, Any]) -> None:
        """Stop here with the error: paused for a workflow, failed for a standalone task."""
        self.status = PAUSED if self.instance.kind is Kind.WORKFLOW else InstanceStatus.FAILED
        self.error = error
        self.drop_run()
        self.append(Entry.ERROR, error.get("position"), error.get("class"), json.dumps(error))
        how = "paused by error" if self.status is PAUSED else "failed with"
        event = "paused_by_error" if self.status is PAUSED else "failed"
        self.log(
            f"{how} {error.get('class')}: {error.get('message')}",
            event=event,
            position=error.get("position"),
            level="error",
        )

    def current_error(self) -> dict[str, Any] | None:
        if self.error is not UNSET:
            return self.error  # type: ignore[no-any-return]
        return json.loads(self.instance.error) if self.instance.error else None

    def drop_run(self) -> None:
        self.ctx.cache.evict(self.id)
        if self.run is not None:
            self.run.close()
        self.run = None

    def finish(self) -> None:
        """Keep a running run for the next step; write the instance's changed fields."""
        if self.run is not None and self.status is RUNNING:
            self.ctx.cache.put(self.id, self.run)  # evicting others only once we are done with them
        changed_status = self.status is not self.instance.status
        changed_properties = self.properties != self.instance.properties
        if changed_status or changed_properties:
            self.ctx.decided[self.id] = (self.status, self.properties)  # what calls to it later this step see
        if changed_status or changed_properties or self.error is not UNSET:
            self.batch.update_instance(
                self.id,
                status=self.status if changed_status else None,
                properties=self.properties if changed_properties else UNSET,
                error=UNSET if self.error is UNSET else (json.dumps(self.error) if self.error else None),
            )

    def log(self, message: str, *, event: str, position: int | None = None, level: str = "info") -> None:
        """A line of the daemon's log about this instance (written once the step's commit landed)."""
        line = LogLine(
            message, event=event, level=level, instance_id=self.id, name=self.instance.name, position=position
        )
        self.ctx.log(line)

"""How a SQL backend's row writer applies a Batch: each op type of ``ops.py`` to one method of
the writer, in one place for SQLite's and PostgreSQL's writers (``sqlite_writer.py``,
``postgres_writer.py``), which make the same writes with their own SQL. Some ops' rows are
gathered and sent at ``flush()``; an op that writes at once first flushes what is gathered, so
every op sees the effects of those before it. (The memory store interprets the ops on its own
tables: ``memory_ops.py``.)"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from zenaton_runtime.errors import DuplicateInstanceError, StoreError
from zenaton_runtime.models import InboxKind, Instance, InstanceStatus, Schedule, TaskRecord, TaskStatus, Timer
from zenaton_runtime.store.ops import (
    AddSchedule,
    AddTask,
    AddTimer,
    Append,
    Batch,
    CancelTasks,
    ConsumeInbox,
    CreateInstance,
    DeleteTimer,
    DeleteTimers,
    NewEntry,
    Op,
    Post,
    Rewind,
    UpdateInstance,
    UpdateTask,
)


class RowWriter(Protocol):
    """What a backend's writer does for each op, inside its open transaction."""

    def flush(self) -> object: ...

    def create_instance(
        self, instance: Instance, started: NewEntry, task: TaskRecord | None = None, *, skip_duplicate: bool
    ) -> bool: ...

    def append(self, entry: NewEntry) -> None: ...

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = ..., error: Any = ...
    ) -> None: ...

    def add_task(self, task: TaskRecord) -> None: ...

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None: ...

    def cancel_tasks(self, instance_id: str) -> None: ...

    def add_timer(self, timer: Timer) -> None: ...

    def delete_timer(self, instance_id: str, position: int) -> None: ...

    def delete_timers(self, instance_id: str) -> None: ...

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None: ...

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int: ...

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None: ...

    def add_schedule(self, schedule: Schedule) -> None: ...


def apply_ops(writer: RowWriter, batch: Batch) -> None:
    """Every op of ``batch``, in order."""
    for op in batch.ops:
        kind = type(op)
        if kind not in GATHERED_OPS:
            writer.flush()
        OP_HANDLERS[kind](writer, op)


def claim_gathered(
    new_tasks: list[tuple[Any, ...]],
    instance_sets: dict[str, dict[str, Any]],
    limit: int,
    not_mine: AbstractSet[str] = frozenset(),
) -> list[TaskRecord]:
    """Claim (up to ``limit``) the tasks a batch adds while they are still gathered rows (the
    task columns' order): each becomes running, attempt 1, unless its instance stops in this
    batch or is one of ``not_mine``. Both writers' ``claim_added``."""
    stopped = {i for i, columns in instance_sets.items() if columns.get("status", "running") != "running"}
    claimed: list[TaskRecord] = []
    for n, row in enumerate(new_tasks):
        if len(claimed) >= limit:
            break
        if row[5] == "queued" and row[1] not in stopped and row[1] not in not_mine:
            row = new_tasks[n] = (*row[:5], "running", row[6], row[7] + 1, *row[8:])
            claimed.append(TaskRecord(row[0], row[1], row[2], row[3], row[4], TaskStatus.RUNNING, *row[6:10]))
    return claimed


def duplicate_instance(name: str, custom_id: str, env: str) -> DuplicateInstanceError:
    return DuplicateInstanceError(
        f"workflow {name!r} already has an unfinished instance with id {custom_id!r} (env {env!r})"
    )


def _create_child(w: RowWriter, op: CreateInstance) -> None:
    try:
        w.create_instance(op.instance, op.started, op.task, skip_duplicate=False)
    except DuplicateInstanceError as e:  # taken after the step checked it: the step decides again
        raise StoreError(f"{e}: taken after the step decided; it is decided again") from e


def _update_instance(w: RowWriter, op: UpdateInstance) -> None:
    w.update_instance(op.instance_id, status=op.status, properties=op.properties, error=op.error)


def _update_task(w: RowWriter, op: UpdateTask) -> None:
    w.update_task(op.task_id, status=op.status, retry_index=op.retry_index, run_at=op.run_at)


def _post(w: RowWriter, op: Post) -> None:
    w.post(op.instance_id, op.kind, op.name, op.data)


# Each op type interpreted in one place.
OP_HANDLERS: dict[type[Op], Callable[[RowWriter, Any], object]] = {
    CreateInstance: _create_child,
    Append: lambda w, op: w.append(op.entry),
    UpdateInstance: _update_instance,
    AddTask: lambda w, op: w.add_task(op.task),
    UpdateTask: _update_task,
    CancelTasks: lambda w, op: w.cancel_tasks(op.instance_id),
    AddTimer: lambda w, op: w.add_timer(op.timer),
    DeleteTimer: lambda w, op: w.delete_timer(op.instance_id, op.position),
    DeleteTimers: lambda w, op: w.delete_timers(op.instance_id),
    ConsumeInbox: lambda w, op: w.consume_inbox(op.instance_id, op.item_ids),
    Post: _post,
    Rewind: lambda w, op: w.rewind(op.instance_id, op.keep_through_seq, op.position),
    AddSchedule: lambda w, op: w.add_schedule(op.schedule),
}
# Ops whose rows are gathered for the flush; the others write at once, after a flush.
GATHERED_OPS = frozenset(
    {CreateInstance, Append, UpdateInstance, AddTask, UpdateTask, ConsumeInbox, DeleteTimer, DeleteTimers}
)

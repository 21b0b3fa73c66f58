"""The batch ops in memory (a mixin of MemoryStore: it uses its tables, lock and undo log).

Each op type of ``store/ops.py`` is interpreted in one place, ``OP_HANDLERS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from zenaton_runtime.errors import DuplicateInstanceError, NotFoundError, StoreError
from zenaton_runtime.models import (
    LIVE_TASKS,
    UNFINISHED,
    Entry,
    InboxItem,
    InboxKind,
    Instance,
    InstanceStatus,
    JournalEntry,
    Kind,
    Schedule,
    TaskRecord,
    TaskStatus,
    Timer,
)
from zenaton_runtime.store.ops import (
    UNSET,
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


class MemoryOps:
    now: Callable[[], float]
    _set: Callable[..., None]
    _del: Callable[..., None]
    _push: Callable[..., None]
    _next: Callable[[str], int]
    _require: Callable[[str], Instance]
    _op_rewind: Callable[[str, int, int], None]
    _op_add_schedule: Callable[[Schedule], None]
    _instances: dict[str, Instance]
    _order: dict[str, int]
    _journal: dict[str, list[JournalEntry]]
    _custom_ids: dict[tuple[str, str, str], str]
    _ready: dict[str, bool]
    _tasks: dict[str, TaskRecord]
    _tasks_of: dict[str, list[str]]
    _timers: dict[tuple[str, int], Timer]
    _inbox: dict[str, dict[int, InboxItem]]

    def _apply_ops(self, batch: Batch) -> None:
        for op in batch.ops:
            OP_HANDLERS[type(op)](self, op)

    def _op_create_instance(
        self, instance: Instance, started: NewEntry, task: TaskRecord | None = None, *, skip_duplicate: bool
    ) -> bool:
        i = dataclasses.replace(instance, kind=Kind(instance.kind), status=InstanceStatus(instance.status))
        if started.instance_id != i.id:
            raise StoreError(f"started entry for {started.instance_id!r} given with instance {i.id!r}")
        key = _custom_key(i)
        if key is not None and key in self._custom_ids:
            if skip_duplicate:
                return False
            raise _duplicate(i)
        if i.id in self._instances:
            raise StoreError(f"cannot create instance {i.id!r}: the id exists")
        self._set(self._instances, i.id, i)
        self._set(self._order, i.id, self._next("instance"))
        self._set(self._journal, i.id, [])
        if key is not None:
            self._set(self._custom_ids, key, i.id)
        if i.kind is Kind.WORKFLOW:
            self._set(self._ready, i.id, True)
        self._op_append(started)
        if task is not None:
            self._op_add_task(task)
        return True

    def _op_append(self, entry: NewEntry) -> None:
        self._require(entry.instance_id)
        entries = self._journal[entry.instance_id]
        self._push(
            entries,
            JournalEntry(
                entry.instance_id,
                len(entries) + 1,
                Entry(entry.type),
                entry.position,
                entry.name,
                entry.data,
                entry.properties,
                self.now(),
            ),
        )

    def _op_update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        old = self._require(instance_id)
        changes: dict[str, Any] = {"updated_at": self.now()}
        if status is not None:
            changes["status"] = InstanceStatus(status)
        if properties is not UNSET:
            changes["properties"] = properties
        if error is not UNSET:
            changes["error"] = error
        new = dataclasses.replace(old, **changes)
        old_key, new_key = _custom_key(old), _custom_key(new)
        if new_key is not None and self._custom_ids.get(new_key, instance_id) != instance_id:
            raise _duplicate(new)
        if old_key is not None and new_key is None:
            self._del(self._custom_ids, old_key)  # finished: the custom id is free again
        if new_key is not None:
            self._set(self._custom_ids, new_key, instance_id)
        self._set(self._instances, instance_id, new)

    def _op_add_task(self, task: TaskRecord) -> None:
        self._require(task.instance_id)
        if task.id in self._tasks:
            raise StoreError(f"cannot add task {task.id!r}: the id exists")
        self._set(self._tasks, task.id, dataclasses.replace(task, status=TaskStatus(task.status)))
        if task.instance_id not in self._tasks_of:
            self._set(self._tasks_of, task.instance_id, [])
        self._push(self._tasks_of[task.instance_id], task.id)

    def _op_update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFoundError(f"no task with id {task_id!r}")
        changes: dict[str, Any] = {
            "status": None if status is None else TaskStatus(status),
            "retry_index": retry_index,
            "run_at": run_at,
        }
        self._set(
            self._tasks, task_id, dataclasses.replace(task, **{k: v for k, v in changes.items() if v is not None})
        )

    def _op_cancel_tasks(self, instance_id: str) -> None:
        self._require(instance_id)
        for task_id in self._tasks_of.get(instance_id, []):
            task = self._tasks[task_id]
            if task.status in LIVE_TASKS:
                self._set(self._tasks, task_id, dataclasses.replace(task, status=TaskStatus.CANCELLED))

    def _op_add_timer(self, timer: Timer) -> None:
        """A timer replaces any timer at the same instance and position."""
        self._require(timer.instance_id)
        self._set(self._timers, (timer.instance_id, timer.position), timer)

    def _op_delete_timer(self, instance_id: str, position: int) -> None:
        self._require(instance_id)
        self._del(self._timers, (instance_id, position))

    def _op_delete_timers(self, instance_id: str) -> None:
        self._require(instance_id)
        for key in [k for k in self._timers if k[0] == instance_id]:
            self._del(self._timers, key)

    def _op_consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        self._require(instance_id)
        items = self._inbox.get(instance_id, {})
        for item_id in item_ids:
            self._del(items, item_id)
        if items:
            self._set(self._ready, instance_id, True)
        else:
            self._del(self._ready, instance_id)

    def _op_post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        self._require(instance_id)
        item = InboxItem(self._next("inbox"), instance_id, kind, name, data, self.now())
        if instance_id not in self._inbox:
            self._set(self._inbox, instance_id, {})
        self._set(self._inbox[instance_id], item.id, item)
        self._set(self._ready, instance_id, True)
        return item.id


def _create_child(store: MemoryOps, op: CreateInstance) -> None:
    try:
        store._op_create_instance(op.instance, op.started, op.task, skip_duplicate=False)
    except DuplicateInstanceError as e:  # taken after the step checked it: the step decides again
        raise StoreError(f"{e}: taken after the step decided; it is decided again") from e


# Each op type interpreted in one place.
OP_HANDLERS: dict[type[Op], Callable[[MemoryOps, Any], object]] = {
    CreateInstance: _create_child,
    Append: lambda s, op: s._op_append(op.entry),
    UpdateInstance: lambda s, op: s._op_update_instance(
        op.instance_id, status=op.status, properties=op.properties, error=op.error
    ),
    AddTask: lambda s, op: s._op_add_task(op.task),
    UpdateTask: lambda s, op: s._op_update_task(
        op.task_id, status=op.status, retry_index=op.retry_index, run_at=op.run_at
    ),
    CancelTasks: lambda s, op: s._op_cancel_tasks(op.instance_id),
    AddTimer: lambda s, op: s._op_add_timer(op.timer),
    DeleteTimer: lambda s, op: s._op_delete_timer(op.instance_id, op.position),
    DeleteTimers: lambda s, op: s._op_delete_timers(op.instance_id),
    ConsumeInbox: lambda s, op: s._op_consume_inbox(op.instance_id, op.item_ids),
    Post: lambda s, op: s._op_post(op.instance_id, op.kind, op.name, op.data),
    Rewind: lambda s, op: s._op_rewind(op.instance_id, op.keep_through_seq, op.position),
    AddSchedule: lambda s, op: s._op_add_schedule(op.schedule),
}


def _custom_key(i: Instance) -> tuple[str, str, str] | None:
    """The (env, name, custom id) an unfinished workflow holds, else None."""
    if i.kind == Kind.WORKFLOW and i.custom_id is not None and i.status in UNFINISHED:
        return (i.env, i.name, i.custom_id)
    return None


def _duplicate(i: Instance) -> DuplicateInstanceError:
    return DuplicateInstanceError(
        f"workflow {i.name!r} already has an unfinished instance with id {i.custom_id!r} (env {i.env!r})"
    )

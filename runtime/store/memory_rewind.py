"""The rewind archive in memory (a mixin of MemoryStore: it uses its lock and undo log)."""

from __future__ import annotations

import dataclasses
from typing import Any

from zenaton_runtime.models import OPEN_TASKS, ArchivedRun, Instance, JournalEntry, TaskRecord, TaskStatus, Timer


class MemoryRewind:
    now: Any
    _lock: Any
    _set: Any
    _del: Any
    _require: Any
    _instances: dict[str, Instance]
    _journal: dict[str, list[JournalEntry]]
    _tasks: dict[str, TaskRecord]
    _tasks_of: dict[str, list[str]]
    _timers: dict[tuple[str, int], Timer]

    @property
    def _archived(self) -> dict[str, tuple[ArchivedRun, ...]]:
        if not hasattr(self, "_archive_table"):
            self._archive_table: dict[str, tuple[ArchivedRun, ...]] = {}
        return self._archive_table

    def archive(self, instance_id: str) -> list[ArchivedRun]:
        with self._lock:
            return list(self._archived.get(instance_id, ()))

    def _op_rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        self._require(instance_id)
        entries = self._journal[instance_id]
        moved = tuple(entries[keep_through_seq:])  # entry n has seq n + 1
        if moved:
            runs = self._archived.get(instance_id, ())
            run = ArchivedRun(instance_id, runs[-1].run + 1 if runs else 1, self.now(), moved)
            self._set(self._archived, instance_id, (*runs, run))
            self._set(self._journal, instance_id, entries[:keep_through_seq])
        for task_id in self._tasks_of.get(instance_id, []):
            task = self._tasks[task_id]
            if task.position >= position and task.status in OPEN_TASKS:
                self._set(self._tasks, task_id, dataclasses.replace(task, status=TaskStatus.CANCELLED))
        for key in [k for k in self._timers if k[0] == instance_id and k[1] >= position]:
            self._del(self._timers, key)
        for child in list(self._instances.values()):
            if (
                child.parent_id == instance_id
                and child.parent_position is not None
                and child.parent_position >= position
            ):
                self._set(self._instances, child.id, dataclasses.replace(child, parent_position=None))

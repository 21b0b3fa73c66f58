"""Retention in memory (a mixin of MemoryStore: it uses its tables, lock and undo log): which
finished instances may go, and removing them with everything they own, all or nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zenaton_runtime.models import UNFINISHED, Instance, InstanceStatus

FINISHED = tuple(s for s in InstanceStatus if s.finished)


class MemoryPrune:
    _lock: Any
    _write: Any
    _del: Any
    _instances: dict[str, Instance]
    _order: dict[str, int]
    _ready: dict[str, bool]
    _journal: Any
    _tasks: Any
    _tasks_of: Any
    _timers: Any
    _inbox: Any
    _archived: Any

    def _prunable(self, instance: Instance, statuses: tuple[InstanceStatus, ...], before: float | None) -> bool:
        """Finished (of these statuses), last updated before ``before``, its parent finished or
        gone, and none of its children unfinished."""
        if instance.status not in statuses or instance.status not in FINISHED:
            return False
        if before is not None and not instance.updated_at < before:
            return False
        parent = self._instances.get(instance.parent_id) if instance.parent_id else None
        if parent is not None and parent.status in UNFINISHED:
            return False
        return not any(c.parent_id == instance.id and c.status in UNFINISHED for c in self._instances.values())

    def prunable(self, statuses: Iterable[InstanceStatus], before: float, limit: int) -> list[str]:
        wanted = tuple(InstanceStatus(s) for s in statuses)
        with self._lock:
            found = [i for i in self._instances.values() if self._prunable(i, wanted, before)]
        found.sort(key=lambda i: (i.updated_at, self._order[i.id]))
        return [i.id for i in found[: max(limit, 0)]]

    def prune(self, instance_ids: Iterable[str], before: float | None = None) -> int:
        ids = list(dict.fromkeys(instance_ids))

        def run() -> int:
            gone = [i for i in ids if (x := self._instances.get(i)) is not None and self._prunable(x, FINISHED, before)]
            for instance_id in gone:
                for task_id in self._tasks_of.get(instance_id, []):
                    self._del(self._tasks, task_id)
                for key in [k for k in self._timers if k[0] == instance_id]:
                    self._del(self._timers, key)
                for table in (self._tasks_of, self._inbox, self._archived, self._journal, self._ready, self._order):
                    self._del(table, instance_id)
                self._del(self._instances, instance_id)
            return len(gone)

        return int(self._write(run, step=True)) if ids else 0  # no work for the engine: changes() stays

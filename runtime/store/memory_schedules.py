"""Cron schedules in memory (a mixin of MemoryStore: it uses its lock and undo log)."""

from __future__ import annotations

import dataclasses
from typing import Any

from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import Instance, Schedule, TaskRecord
from zenaton_runtime.store.ops import NewEntry


class MemorySchedules:
    _lock: Any
    _write: Any
    _set: Any
    _del: Any
    _op_create_instance: Any

    @property
    def _schedules(self) -> dict[str, Schedule]:
        if not hasattr(self, "_schedule_table"):
            self._schedule_table: dict[str, Schedule] = {}
        return self._schedule_table

    def add_schedule(self, schedule: Schedule) -> None:
        self._write(lambda: self._set(self._schedules, schedule.id, schedule))

    def _op_add_schedule(self, schedule: Schedule) -> None:
        """The AddSchedule op of a batch (a workflow's ``schedule()``), inside the batch's write."""
        if schedule.id in self._schedules:
            raise StoreError(f"cannot add schedule {schedule.id!r}: the id exists")
        self._set(self._schedules, schedule.id, schedule)

    def list_schedules(self, env: str | None = None) -> list[Schedule]:
        with self._lock:
            found = [s for s in self._schedules.values() if env is None or s.env == env]
        return sorted(found, key=lambda s: s.next_fire)

    def delete_schedule(self, schedule_id: str) -> bool:
        def delete() -> bool:
            present = schedule_id in self._schedules
            self._del(self._schedules, schedule_id)
            return present

        return bool(self._write(delete))

    def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        with self._lock:
            due = sorted((s for s in self._schedules.values() if s.next_fire <= now), key=lambda s: s.next_fire)
        return due[:limit]

    def fire_schedule(
        self,
        schedule_id: str,
        expected_fire: float,
        next_fire: float,
        now: float,
        records: tuple[Instance, NewEntry, TaskRecord | None] | None,
    ) -> bool:
        def fire() -> bool:
            schedule = self._schedules.get(schedule_id)
            if schedule is None or schedule.next_fire != expected_fire:
                return False
            if records is None:
                updated = dataclasses.replace(schedule, skips=schedule.skips + 1, last_skip=now, next_fire=next_fire)
            else:
                self._op_create_instance(*records, skip_duplicate=False)
                updated = dataclasses.replace(schedule, fires=schedule.fires + 1, last_fire=now, next_fire=next_fire)
            self._set(self._schedules, schedule_id, updated)
            return True

        return bool(self._write(fire))

"""Cron schedules in PostgreSQL (a mixin of PostgresStore: it uses its _read and _write)."""

from __future__ import annotations

from typing import Any

from zenaton_runtime.models import Instance, Schedule, TaskRecord
from zenaton_runtime.store.ops import NewEntry
from zenaton_runtime.store.sqlite_schedules import SCHEDULE_COLS, schedule_row


class PostgresSchedules:
    _read: Any
    _write: Any

    def add_schedule(self, schedule: Schedule) -> None:
        self._write(lambda w: w.add_schedule(schedule))

    def list_schedules(self, env: str | None = None) -> list[Schedule]:
        if env is not None and "\x00" in env:
            return []
        where, params = ("WHERE env = %s", (env,)) if env is not None else ("", ())
        rows = self._read(f"SELECT {SCHEDULE_COLS} FROM schedules {where} ORDER BY next_fire, ord", params)
        return [schedule_row(r) for r in rows]

    def delete_schedule(self, schedule_id: str) -> bool:
        if "\x00" in schedule_id:
            return False  # no stored id holds a NUL character
        return bool(self._write(lambda w: w.c.execute("DELETE FROM schedules WHERE id = %s", (schedule_id,)).rowcount))

    def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        rows = self._read(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE next_fire <= %s ORDER BY next_fire, ord LIMIT %s",
            (now, max(limit, 0)),
        )
        return [schedule_row(r) for r in rows]

    def fire_schedule(
        self,
        schedule_id: str,
        expected_fire: float,
        next_fire: float,
        now: float,
        records: tuple[Instance, NewEntry, TaskRecord | None] | None,
    ) -> bool:
        def fire(w: Any) -> bool:
            row = w.c.execute("SELECT next_fire FROM schedules WHERE id = %s FOR UPDATE", (schedule_id,)).fetchone()
            if row is None or row[0] != expected_fire:  # deleted, or fired already
                return False
            if records is None:
                w.c.execute(
                    "UPDATE schedules SET skips = skips + 1, last_skip = %s, next_fire = %s WHERE id = %s",
                    (now, next_fire, schedule_id),
                )
                return True
            w.create_instance(*records, skip_duplicate=False)
            w.c.execute(
                "UPDATE schedules SET fires = fires + 1, last_fire = %s, next_fire = %s WHERE id = %s",
                (now, next_fire, schedule_id),
            )
            return True

        return bool(self._write(fire))

"""Cron schedules in SQLite (a mixin of SQLiteStore: it uses its _read and _write)."""

from __future__ import annotations

from typing import Any

from zenaton_runtime.models import Instance, Kind, Schedule, TaskRecord
from zenaton_runtime.store.ops import NewEntry

SCHEDULE_COLS = (
    "id, env, kind, name, custom_id, data, cron, timezone, next_fire, last_fire, fires, skips, last_skip, created_at"
)


def schedule_row(r: Any) -> Schedule:
    return Schedule(r[0], r[1], Kind(r[2]), *r[3:])


def schedule_values(schedule: Schedule) -> tuple[Any, ...]:
    """The schedule's row, in the order of SCHEDULE_COLS."""
    return (
        schedule.id,
        schedule.env,
        schedule.kind.value,
        schedule.name,
        schedule.custom_id,
        schedule.data,
        schedule.cron,
        schedule.timezone,
        schedule.next_fire,
        schedule.last_fire,
        schedule.fires,
        schedule.skips,
        schedule.last_skip,
        schedule.created_at,
    )


INSERT_SCHEDULE = f"INSERT INTO schedules ({SCHEDULE_COLS}) VALUES ({', '.join('?' * len(SCHEDULE_COLS.split(',')))})"


class SQLiteSchedules:
    _read: Any
    _write: Any

    def add_schedule(self, schedule: Schedule) -> None:
        self._write(lambda w: w.c.execute(INSERT_SCHEDULE, schedule_values(schedule)))

    def list_schedules(self, env: str | None = None) -> list[Schedule]:
        where, params = ("WHERE env = ?", (env,)) if env is not None else ("", ())
        rows = self._read(f"SELECT {SCHEDULE_COLS} FROM schedules {where} ORDER BY next_fire, ord", params)
        return [schedule_row(r) for r in rows]

    def delete_schedule(self, schedule_id: str) -> bool:
        return bool(self._write(lambda w: w.c.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount))

    def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        rows = self._read(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE next_fire <= ? ORDER BY next_fire, ord LIMIT ?", (now, limit)
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
            row = w.c.execute("SELECT next_fire FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
            if row is None or row[0] != expected_fire:  # deleted, or fired already
                return False
            if records is None:
                w.c.execute(
                    "UPDATE schedules SET skips = skips + 1, last_skip = ?, next_fire = ? WHERE id = ?",
                    (now, next_fire, schedule_id),
                )
                return True
            w.create_instance(*records, skip_duplicate=False)
            w.c.execute(
                "UPDATE schedules SET fires = fires + 1, last_fire = ?, next_fire = ? WHERE id = ?",
                (now, next_fire, schedule_id),
            )
            return True

        return bool(self._write(fire))

"""What a monitor reads, in PostgreSQL (a mixin of PostgresStore): the daemons' records,
instance counts by kind, name and status, the depth of the task queue.

Removing a daemon's record ends its lease (postgres_leases.py): what it owned can be taken at once.

A heartbeat is its own small transaction, never part of a step, and sends no NOTIFY: it makes
no work for the engine, so ``changes()`` stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zenaton_runtime.models import DaemonRecord, InstanceCount
from zenaton_runtime.store.postgres_schema import CLAIMABLE
from zenaton_runtime.store.sqlite_rows import INSTANCE_STATUSES, KINDS

DAEMON_COLS = (
    "id, host, pid, env, version, started_at, heartbeat_at, workers, busy_workers, instances_held,"
    " queue_depth, steps, steps_per_second, stats"
)
DAEMON_MARKS = ", ".join(["%s"] * len(DAEMON_COLS.split(",")))
DAEMON_UPSERT = (
    f"INSERT INTO daemons ({DAEMON_COLS}) VALUES ({DAEMON_MARKS}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in DAEMON_COLS.split(",")[1:])
)


class PostgresMonitoring:
    _read: Callable[..., list[Any]]
    _write: Callable[..., Any]

    def heartbeat(self, record: DaemonRecord) -> None:
        row = (
            record.id,
            record.host,
            record.pid,
            record.env,
            record.version,
            record.started_at,
            record.heartbeat_at,
            record.workers,
            record.busy_workers,
            record.instances_held,
            record.queue_depth,
            record.steps,
            record.steps_per_second,
            record.stats,
        )
        self._write(lambda w: w.c.execute(DAEMON_UPSERT, row), notify=False)

    def daemons(self) -> list[DaemonRecord]:
        rows = self._read(f"SELECT {DAEMON_COLS} FROM daemons ORDER BY heartbeat_at DESC, id")
        return [DaemonRecord(*r) for r in rows]

    def remove_daemon(self, daemon_id: str) -> bool:
        if "\x00" in daemon_id:
            return False

        def remove(w: Any) -> int:
            w.c.execute("UPDATE leases SET until = 0 WHERE id = %s", (daemon_id,))
            return int(w.c.execute("DELETE FROM daemons WHERE id = %s", (daemon_id,)).rowcount)

        return bool(self._write(remove, notify=False))

    def instance_counts(self, env: str | None = None) -> list[InstanceCount]:
        if env is not None and "\x00" in env:
            return []
        where, params = ("WHERE env = %s", (env,)) if env is not None else ("", ())
        rows = self._read(
            f"SELECT kind, name, status, count(*) FROM instances {where} GROUP BY kind, name, status"
            " ORDER BY kind, name, status",
            params,
        )
        return [InstanceCount(KINDS[k], n, INSTANCE_STATUSES[s], c) for k, n, s, c in rows]

    def queue_depth(self, now: float) -> int:
        return int(self._read(f"SELECT count(*) FROM tasks WHERE {CLAIMABLE}", (now,))[0][0])

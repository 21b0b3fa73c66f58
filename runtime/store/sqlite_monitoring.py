"""What a monitor reads, in SQLite (a mixin of SQLiteStore): the daemons' records, instance
counts by kind, name and status, the depth of the task queue.

A heartbeat is its own small transaction: like any write other than a step's, it first waits
for the step commit in flight, if any (``transaction()``), and it is never part of a step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zenaton_runtime.models import DaemonRecord, InstanceCount
from zenaton_runtime.store.schema import CLAIMABLE
from zenaton_runtime.store.sqlite_rows import INSTANCE_STATUSES, KINDS

DAEMON_COLS = (
    "id, host, pid, env, version, started_at, heartbeat_at, workers, busy_workers, instances_held,"
    " queue_depth, steps, steps_per_second, stats"
)
DAEMON_MARKS = ", ".join("?" * len(DAEMON_COLS.split(",")))


class SQLiteMonitoring:
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
        # step=True: a heartbeat makes no work for the engine, so changes() stays as it was
        self._write(
            lambda w: w.c.execute(f"INSERT OR REPLACE INTO daemons ({DAEMON_COLS}) VALUES ({DAEMON_MARKS})", row),
            step=True,
        )

    def daemons(self) -> list[DaemonRecord]:
        rows = self._read(f"SELECT {DAEMON_COLS} FROM daemons ORDER BY heartbeat_at DESC, id")
        return [DaemonRecord(*r) for r in rows]

    def remove_daemon(self, daemon_id: str) -> bool:
        deleted = self._write(
            lambda w: w.c.execute("DELETE FROM daemons WHERE id = ?", (daemon_id,)).rowcount, step=True
        )
        return bool(deleted)

    def instance_counts(self, env: str | None = None) -> list[InstanceCount]:
        where, params = ("WHERE env = ?", (env,)) if env is not None else ("", ())
        rows = self._read(
            f"SELECT kind, name, status, count(*) FROM instances {where} GROUP BY kind, name, status"
            " ORDER BY kind, name, status",
            params,
        )
        return [InstanceCount(KINDS[k], n, INSTANCE_STATUSES[s], c) for k, n, s, c in rows]

    def queue_depth(self, now: float) -> int:
        return int(self._read(f"SELECT count(*) FROM tasks WHERE {CLAIMABLE}", (now,))[0][0])

"""What a monitor reads, in memory (a mixin of MemoryStore: it uses its lock and undo log):
the daemons' records, instance counts by kind, name and status, the depth of the task queue."""

from __future__ import annotations

from collections import Counter
from typing import Any

from zenaton_runtime.models import DaemonRecord, InstanceCount, TaskStatus


class MemoryMonitoring:
    _lock: Any
    _write: Any
    _set: Any
    _del: Any
    _instances: Any
    _tasks: Any
    _runs: Any

    @property
    def _daemons(self) -> dict[str, DaemonRecord]:
        if not hasattr(self, "_daemon_table"):
            self._daemon_table: dict[str, DaemonRecord] = {}
        return self._daemon_table

    def heartbeat(self, record: DaemonRecord) -> None:
        # step=True: a heartbeat makes no work for the engine, so changes() stays as it was
        self._write(lambda: self._set(self._daemons, record.id, record), step=True)

    def daemons(self) -> list[DaemonRecord]:
        with self._lock:
            records = list(self._daemons.values())
        return sorted(records, key=lambda r: (-r.heartbeat_at, r.id))

    def remove_daemon(self, daemon_id: str) -> bool:
        def remove() -> bool:
            present = daemon_id in self._daemons
            self._del(self._daemons, daemon_id)
            return present

        return bool(self._write(remove, step=True))

    def instance_counts(self, env: str | None = None) -> list[InstanceCount]:
        with self._lock:
            counted = Counter(
                (i.kind, i.name, i.status) for i in self._instances.values() if env is None or i.env == env
            )
        return [InstanceCount(k, n, s, c) for (k, n, s), c in sorted(counted.items(), key=lambda kv: kv[0])]

    def queue_depth(self, now: float) -> int:
        with self._lock:
            return sum(
                1 for t in self._tasks.values() if t.status == TaskStatus.QUEUED and t.run_at <= now and self._runs(t)
            )

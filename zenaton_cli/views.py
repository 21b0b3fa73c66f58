"""What the commands print with --json, built in one place: the dashboard's API serves the same."""

from __future__ import annotations

import json
import time
from typing import Any

from zenaton_runtime.client.inspect_views import iso
from zenaton_runtime.models import DaemonRecord, Schedule
from zenaton_runtime.pidlock import lock_path, read_info
from zenaton_runtime.project.config import Config
from zenaton_runtime.store import Store, redacted


def status_view(config: Config, store: Store) -> dict[str, Any]:
    """`zenaton status --json`: whether a daemon runs here, the daemons on the store, the counts."""
    info = read_info(lock_path(config))
    counts = store.counts()
    now = time.time()
    return {
        "running": info is not None,
        "pid": info.pid if info else None,
        "started_at": iso(info.started_at) if info else None,
        "uptime": round(now - info.started_at, 1) if info else None,
        "store": redacted(config.store_url),
        "env": config.env,
        "instances": {k: v for k, v in counts.items() if k != "tasks_queued"},
        "tasks_queued": counts.get("tasks_queued", 0),
        "daemons": [daemon_view(record, now) for record in store.daemons()],
    }


def daemon_view(record: DaemonRecord, now: float) -> dict[str, Any]:
    """One daemon's record as `status --json` prints it: alive, or stale (no heartbeat for
    DAEMON_STALE_AFTER seconds: it died or hangs)."""
    return {
        "id": record.id,
        "alive": record.alive(now),
        "host": record.host,
        "pid": record.pid,
        "env": record.env,
        "version": record.version,
        "started_at": iso(record.started_at),
        "heartbeat_at": iso(record.heartbeat_at),
        "heartbeat_age": round(max(0.0, now - record.heartbeat_at), 1),
        "workers": record.workers,
        "busy_workers": record.busy_workers,
        "instances_held": record.instances_held,
        "queue_depth": record.queue_depth,
        "steps": record.steps,
        "steps_per_second": record.steps_per_second,
        "stats": _stats(record.stats),
    }


def _stats(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # written by something else: shown as it is
        return text


def schedule_view(schedule: Schedule) -> dict[str, object]:
    return {
        "id": schedule.id,
        "kind": schedule.kind.value,
        "name": schedule.name,
        "custom_id": schedule.custom_id,
        "env": schedule.env,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "next_fire": iso(schedule.next_fire),
        "last_fire": iso(schedule.last_fire),
        "fires": schedule.fires,
        "skips": schedule.skips,
        "last_skip": iso(schedule.last_skip),
        "created_at": iso(schedule.created_at),
    }

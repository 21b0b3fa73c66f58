"""What the pages and the API show, read from the store: the same views as the CLI's --json."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from typing import TYPE_CHECKING, Any

from zenaton_runtime.client.inspect_views import instance_summary, instance_view, iso
from zenaton_runtime.models import UNFINISHED, Instance, InstanceStatus, Kind
from zenaton_runtime.pidlock import lock_path, read_info
from zenaton_runtime.store import Store
from zenaton_runtime.timing.schedules import next_fire

from ..views import schedule_view, status_view

if TYPE_CHECKING:
    from .app import Dashboard

# The steps a rewind can go back to (a call to another instance among them: it is made again).
STEP_KINDS = ("task", "parallel", "wait", "dispatch", "workflow", "send_event", "control", "find", "schedule")
MAX_CHILDREN = 200
UPCOMING = 3  # fire times a schedule shows ahead


def counts_by_name(store: Store, env: str | None) -> dict[str, Any]:
    """Instances by workflow or task name and status, and the totals of each status."""
    names: dict[tuple[str, str], dict[str, int]] = {}
    totals = {s.value: 0 for s in InstanceStatus}
    for count in store.instance_counts(env):
        status = count.status.value
        names.setdefault((count.name, count.kind.value), {})[status] = count.instances
        totals[status] += count.instances
    rows = [
        {"name": name, "kind": kind, "counts": counts, "total": sum(counts.values())}
        for (name, kind), counts in sorted(names.items())
    ]
    return {"rows": rows, "totals": totals, "total": sum(totals.values())}


def instance_page_view(d: Dashboard, instance: Instance) -> dict[str, Any]:
    """``inspect --json`` of the instance, with what its page adds: children, the actions its
    status allows, the requests still waiting for the daemon, and whether a daemon runs."""
    store = d.store()
    archive = store.archive(instance.id)
    journal = store.journal(instance.id)
    view = instance_view(instance, journal, archive)
    view["last_seq"] = journal[-1].seq if journal else 0
    view["children"] = [instance_summary(c) for c in store.list_instances(parent_id=instance.id, limit=MAX_CHILDREN)]
    view["pending"] = [item.label for item in store.inbox(instance.id)]
    view["actions"] = allowed_actions(instance)
    view["positions"] = sorted({s["position"] for s in view["steps"] if s["kind"] in STEP_KINDS})
    view["daemon"] = daemon_running(d)
    view["now"] = iso(time.time())
    return view


def allowed_actions(instance: Instance) -> dict[str, bool]:
    """Which buttons the page offers (the control API refuses the others anyway)."""
    status, workflow = instance.status, instance.kind is Kind.WORKFLOW
    return {
        "pause": workflow and status is InstanceStatus.RUNNING,
        "resume": workflow and status is InstanceStatus.PAUSED,
        "retry": status in (InstanceStatus.PAUSED, InstanceStatus.FAILED) and bool(instance.error),
        "kill": status in (InstanceStatus.RUNNING, InstanceStatus.PAUSED, InstanceStatus.FAILED),
        "event": workflow and status in UNFINISHED,
        "rewind": workflow and status in (InstanceStatus.PAUSED, InstanceStatus.COMPLETED, InstanceStatus.KILLED),
    }


def version_of(store: Store, instance_id: str, known_seq: int = 0) -> str:
    """Changes whenever the instance's page would: a journal entry (a step that changes no
    property too), a status, a request posted or taken. ``known_seq``: the last journal entry
    the asker has seen, so that only newer ones are read."""
    instance = store.get_instance(instance_id)
    if instance is None:
        return "gone"
    newer = store.journal(instance_id, after_seq=known_seq)
    last_seq = newer[-1].seq if newer else known_seq
    return f"{instance.status.value}:{instance.updated_at!r}:{len(store.inbox(instance_id))}:{last_seq}"


def daemon_running(d: Dashboard) -> bool:
    now = time.time()
    if any(record.alive(now) for record in d.store().daemons()):
        return True
    return read_info(lock_path(d.config)) is not None


def daemons_view(d: Dashboard) -> dict[str, Any]:
    """`zenaton status --json`: the daemons on the store, the instances by status, the queue."""
    return status_view(d.config, d.store())


def schedules_view(d: Dashboard) -> list[dict[str, Any]]:
    """`zenaton schedules --json`, with its fire times in the project's timezone: the next
    ``UPCOMING``, and the last with the instance it started (when it started one)."""
    zone = zoneinfo.ZoneInfo(d.config.timezone)
    store = d.store()
    rows = []
    for schedule in store.list_schedules(d.config.env):
        row: dict[str, Any] = schedule_view(schedule)
        upcoming, after = [], schedule.next_fire - 1e-6
        for _ in range(UPCOMING):
            after = next_fire(schedule.cron, schedule.timezone, after)
            upcoming.append(after)
        row["next_fire_local"] = _local(schedule.next_fire, zone)
        row["upcoming_local"] = [_local(t, zone) for t in upcoming]
        row["last_fire_local"] = _local(schedule.last_fire, zone)
        started = [
            i.id
            for i in store.list_instances(env=schedule.env, name=schedule.name, limit=50)
            if schedule.last_fire is not None and i.created_at == schedule.last_fire
        ]
        row["last_fire_instance"] = started[0] if started else None
        rows.append(row)
    return rows


def _local(timestamp: float | None, zone: zoneinfo.ZoneInfo) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, zone).isoformat(sep=" ", timespec="seconds")

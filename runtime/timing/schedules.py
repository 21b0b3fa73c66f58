"""Cron schedules: parsing, next fire times, and firing due schedules (the daemon's part).

Five-field cron (minute hour day month weekday) and six-field cron with seconds
first (``'* * * * * *'``, as in the original examples). Fire times are computed in
the schedule's timezone, so "0 8 * * *" stays at 08:00 local time across DST.
After downtime a schedule fires once for everything it missed, then resumes.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from zenaton.exceptions import InvalidArgumentError
from zenaton_runtime.errors import DuplicateInstanceError
from zenaton_runtime.instances import new_id, new_instance
from zenaton_runtime.models import Kind, Schedule
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.store import Store

FIELD_NAMES = {5: "minute hour day-of-month month day-of-week", 6: "second minute hour day-of-month month day-of-week"}


def check_cron(expression: Any) -> str:
    """The expression, normalised; InvalidArgumentError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgumentError(f"a cron expression must be a non-empty string, not {expression!r}")
    fields = expression.split()
    if len(fields) not in FIELD_NAMES:
        raise InvalidArgumentError(
            f"cron expression {expression!r} has {len(fields)} fields; expected 5 ({FIELD_NAMES[5]}) "
            f"or 6 ({FIELD_NAMES[6]})"
        )
    normalised = " ".join(fields)
    from croniter import croniter  # here: most commands never read a cron expression (start-up)
    from croniter.croniter import CroniterError

    try:
        croniter(normalised, dt.datetime(2000, 1, 1), second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError, KeyError) as error:
        raise InvalidArgumentError(f"invalid cron expression {expression!r}: {error}") from None
    return normalised


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(f"unknown timezone {name!r}") from None


def next_fire(cron: str, timezone: str, after: float) -> float:
    """The first fire time strictly after ``after`` (unix seconds)."""
    start = dt.datetime.fromtimestamp(after, check_timezone(timezone))
    from croniter import croniter  # here: most commands never read a cron expression (start-up)

    iterator = croniter(cron, start, second_at_beginning=len(cron.split()) == 6)
    return float(iterator.get_next(float))


def new_schedule(codec: Codec, job: Any, cron: str, *, env: str, timezone: str, now: float) -> Schedule:
    """The schedule record for a job; its first fire is the next cron time after now."""
    cron = check_cron(cron)
    instance, _, _ = new_instance(codec, job, env=env, now=now)  # checks the job, its id and its data
    return Schedule(
        id=new_id(),
        env=env,
        kind=instance.kind,
        name=instance.name,
        custom_id=instance.custom_id,
        data=codec.encode(job, type(job).__name__),
        cron=cron,
        timezone=timezone,
        next_fire=next_fire(cron, timezone, now),
        last_fire=None,
        fires=0,
        skips=0,
        last_skip=None,
        created_at=now,
    )


def fire_due(store: Store, codec: Codec, now: float, log: Callable[[str], None], limit: int = 100) -> int:
    """Dispatch one instance for each due schedule (once, however many ticks were missed)."""
    fired = 0
    for schedule in store.due_schedules(now, limit):
        following = next_fire(schedule.cron, schedule.timezone, now)
        label = f"schedule {schedule.id[:8]} ({schedule.name}, {schedule.cron})"
        try:
            job = codec.decode(schedule.data)
            records = new_instance(codec, job, env=schedule.env, now=now, custom_id=schedule.custom_id)
        except Exception as error:  # the class is gone, or its id() raises: skip this fire, say why
            store.fire_schedule(schedule.id, schedule.next_fire, following, now, None)
            log(f"{label}: skipped, cannot build the job: {error}")
            continue
        if (
            records[0].kind is Kind.WORKFLOW
            and records[0].custom_id is not None
            and _running(store, schedule, records[0].custom_id)
        ):
            store.fire_schedule(schedule.id, schedule.next_fire, following, now, None)
            log(f"{label}: skipped, instance {records[0].custom_id!r} is still running")
            continue
        try:
            if store.fire_schedule(schedule.id, schedule.next_fire, following, now, records):
                fired += 1
                log(f"{label}: dispatched {records[0].id[:8]}")
        except DuplicateInstanceError:  # a client dispatched the same id in the meantime
            store.fire_schedule(schedule.id, schedule.next_fire, following, now, None)
            log(f"{label}: skipped, instance {records[0].custom_id!r} is still running")
    return fired


def _running(store: Store, schedule: Schedule, custom_id: str) -> bool:
    taken = store.list_instances(env=schedule.env, name=schedule.name, custom_id=custom_id, kind="workflow")
    return any(not i.status.finished for i in taken)

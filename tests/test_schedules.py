"""Cron schedules under a fake clock: fire times, DST, catch-up, skips, bad expressions."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from flowlib.tasks import Add
from flowlib.workflows import EventFlow, Sequential

from tests.store_helpers import get_schedule
from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.models import Kind
from zenaton_runtime.timing.schedules import check_cron, next_fire
from zenaton.exceptions import InvalidArgumentError


def at(text: str, zone: str = "UTC") -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def local(timestamp: float, zone: str) -> str:
    return dt.datetime.fromtimestamp(timestamp, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def test_a_task_schedule_dispatches_at_every_fire_time(harness):
    harness.clock.set(at("2026-01-05 07:59:00"))
    schedule = ClientRuntime(harness.control, env_from_client=False).schedule(Add(1, 2), "0 8 * * *")
    assert schedule.next_fire == at("2026-01-05 08:00:00")
    harness.run()
    assert harness.store.list_instances() == []
    harness.advance(60)  # 08:00
    (first,) = harness.store.list_instances()
    assert (first.kind, first.name, first.status.value) == (Kind.TASK, "Add", "completed")
    harness.advance(86_400)
    assert len(harness.store.list_instances(name="Add")) == 2
    stored = get_schedule(harness.store, schedule.id)
    assert (stored.fires, stored.last_fire, stored.next_fire) == (2, at("2026-01-06 08:00:00"), at("2026-01-07 08:00:00"))


def test_sdk_schedule_with_six_fields_fires_every_second(harness):
    from zenaton._runtime import current_runtime

    token = current_runtime.set(harness.runtime)
    try:
        schedule = Add(5).schedule("* * * * * *")
    finally:
        current_runtime.reset(token)
    start = harness.clock.now()
    assert schedule.next_fire == int(start) + 1
    for _ in range(3):
        harness.advance(1)
    assert len(harness.store.list_instances(name="Add")) == 3


def test_a_workflow_schedule_skips_while_its_custom_id_runs(harness):
    harness.clock.set(at("2026-01-05 00:00:00"))
    schedule = harness.control.schedule(EventFlow("nightly"), "0 * * * *")
    harness.advance(3600)  # fires: EventFlow('nightly') starts and waits for a Ping
    harness.advance(3600)  # fires again while it still runs: skipped
    stored = get_schedule(harness.store, schedule.id)
    assert (stored.fires, stored.skips, stored.last_skip) == (1, 1, at("2026-01-05 02:00:00"))
    (instance,) = harness.store.list_instances(name="EventFlow")
    harness.control.kill(instance)
    harness.run()
    harness.advance(3600)  # free again: fires
    assert len(harness.store.list_instances(name="EventFlow")) == 2


def test_a_custom_id_given_to_the_schedule_is_used_for_each_instance(harness):
    harness.clock.set(at("2026-01-05 00:00:00"))
    harness.control.schedule(Sequential(1), "0 * * * *", custom_id="hourly")
    harness.advance(3600)
    (instance,) = harness.store.list_instances(name="Sequential")
    assert instance.custom_id == "hourly" and instance.status.value == "completed"


def test_missed_ticks_fire_once_on_restart(harness):
    harness.clock.set(at("2026-01-05 00:00:00"))
    schedule = harness.control.schedule(Add(1), "*/10 * * * *")
    harness.clock.set(at("2026-01-08 12:34:00"))  # the daemon was down for three days
    harness.run()
    assert len(harness.store.list_instances(name="Add")) == 1
    stored = get_schedule(harness.store, schedule.id)
    assert stored.next_fire == at("2026-01-08 12:40:00")


def fire_four_times(harness, schedule_id: str, zone: str) -> tuple[list[float], list[str]]:
    """Move the clock to each of the next four fire times; the fire instants and their local times."""
    instants = []
    for _ in range(4):
        harness.clock.set(get_schedule(harness.store, schedule_id).next_fire)
        harness.run()
        instants.append(get_schedule(harness.store, schedule_id).last_fire)
    return instants, [local(t, zone) for t in instants]


DST_WEEKS = {  # a day before each change, and the gaps between four daily fires across it
    ("Europe/Paris", "spring"): ("2026-03-27 09:00:00", [82_800, 86_400, 86_400]),  # a 23-hour night
    ("America/New_York", "spring"): ("2026-03-06 09:00:00", [82_800, 86_400, 86_400]),
    ("Europe/Paris", "autumn"): ("2026-10-23 09:00:00", [86_400, 86_400, 90_000]),  # a 25-hour night
    ("America/New_York", "autumn"): ("2026-10-30 09:00:00", [86_400, 86_400, 90_000]),
}


@pytest.mark.parametrize("zone, season", list(DST_WEEKS))
def test_daily_schedule_stays_at_local_time_across_dst(harness, zone, season):
    start, expected_gaps = DST_WEEKS[(zone, season)]
    control = Control(harness.store, harness.project.codec, "dev", timezone=zone)
    harness.clock.set(at(start, zone))
    schedule = control.schedule(Add(1), "0 8 * * *")
    instants, fires = fire_four_times(harness, schedule.id, zone)
    assert [f[11:19] for f in fires] == ["08:00:00"] * 4
    assert len({f[:10] for f in fires}) == 4  # one fire a day
    gaps = [b - a for a, b in zip(instants, instants[1:])]
    assert sorted(gaps) == expected_gaps


def test_a_time_in_the_spring_gap_fires_once_that_day():
    zone = "Europe/Paris"
    first = next_fire("30 2 * * *", zone, at("2026-03-28 12:00:00", zone))
    second = next_fire("30 2 * * *", zone, first)
    assert local(first, zone).startswith("2026-03-29 03:")  # 02:30 does not exist that night
    assert local(second, zone) == "2026-03-30 02:30:00 CEST"


@pytest.mark.parametrize("bad, says", [
    ("", "non-empty"),
    ("* * *", "has 3 fields"),
    ("61 * * * *", "invalid cron expression"),
    ("* * * * * * *", "has 7 fields"),
    ("a b c d e", "invalid cron expression"),
    (5, "non-empty string"),
])
def test_bad_cron_expressions_are_refused_with_what_is_wrong(harness, bad, says):
    with pytest.raises(InvalidArgumentError, match=says):
        check_cron(bad)
    with pytest.raises(InvalidArgumentError):
        harness.control.schedule(Add(1), bad)
    assert harness.store.list_schedules() == []


def test_unschedule_stops_the_fires(harness):
    harness.clock.set(at("2026-01-05 00:00:00"))
    schedule = harness.control.schedule(Add(1), "0 * * * *")
    assert harness.control.unschedule(schedule.id[:8]).id == schedule.id
    harness.advance(7200)
    assert harness.store.list_instances() == []

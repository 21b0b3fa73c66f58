"""Events, on_event and waits, with time driven by a fake clock."""
from __future__ import annotations

import json

from flowlib.tasks import Ping, Pong
from flowlib.workflows import EventFlow, Signaller, Sleeper, WaitWithTimeout

DAY = 86_400


def test_on_event_changes_properties_seen_by_handle(harness):
    instance_id = harness.dispatch(EventFlow("e1"))
    harness.run()
    assert harness.kinds(instance_id)[-1] == "wait_started:2:Ping"
    harness.runtime.send_event(EventFlow, "e1", Ping("first"))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["before", "first", ["first"], 1]


def test_event_received_before_the_wait_does_not_satisfy_it(harness):
    harness.runtime  # plain-script runtime
    instance_id = harness.dispatch(EventFlow("early"))
    # The event arrives while the first task is still queued: on_event sees it, the wait does not.
    harness.runtime.send_event(EventFlow, "early", Ping("early"))
    harness.run()
    assert harness.status(instance_id) == "running"
    assert harness.properties(instance_id)["pings"] == ["early"]
    harness.runtime.send_event(EventFlow, "early", Ping("late"))
    harness.run()
    assert harness.result(instance_id) == ["before", "late", ["early", "late"], 2]


def test_wait_for_event_with_timeout_returns_the_event(harness):
    instance_id = harness.dispatch(WaitWithTimeout("w1"))
    harness.run()
    harness.advance(3)
    harness.runtime.send_event(WaitWithTimeout, "w1", Ping("in time"))
    harness.run()
    assert harness.result(instance_id) == "in time"
    assert harness.store.due_timers(harness.clock.now() + 10, 10) == []  # the timer was cancelled


def test_wait_for_event_with_timeout_returns_none_when_time_runs_out(harness):
    instance_id = harness.dispatch(WaitWithTimeout("w2"))
    harness.run()
    harness.advance(3.9)
    assert harness.status(instance_id) == "running"
    harness.advance(0.2)
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) is None
    assert "timer_fired:1" in harness.kinds(instance_id)


def test_other_events_do_not_end_a_wait(harness):
    instance_id = harness.dispatch(WaitWithTimeout("w3"))
    harness.run()
    harness.runtime.send_event(WaitWithTimeout, "w3", Pong())
    harness.run()
    assert harness.status(instance_id) == "running"
    assert "event_received:Pong" in harness.kinds(instance_id)


def test_wait_without_timeout_waits_for_days(harness):
    instance_id = harness.dispatch(EventFlow("patient"))
    harness.advance(30 * DAY)
    assert harness.status(instance_id) == "running"
    harness.runtime.send_event(EventFlow, "patient", Ping(1))
    harness.run()
    assert harness.status(instance_id) == "completed"


def test_duration_wait_fires_at_the_recorded_time(harness):
    instance_id = harness.dispatch(Sleeper(2))
    harness.run()
    started = harness.clock.now()
    (wait_entry,) = [e for e in harness.store.journal(instance_id) if e.type.value == "wait_started"]
    assert json.loads(wait_entry.data)["fire_at"] == started + 2 * DAY
    harness.advance(2 * DAY - 1)
    assert harness.status(instance_id) == "running"
    harness.advance(1)
    assert harness.result(instance_id) == 3


def test_fire_time_is_read_back_on_replay_not_recomputed(harness):
    harness.engine.cache.capacity = 0
    instance_id = harness.dispatch(Sleeper(1))
    harness.run()
    harness.advance(DAY / 2)  # replays later must not push the fire time
    harness.advance(DAY / 2)
    assert harness.result(instance_id) == 3


def test_a_task_can_send_an_event_to_its_workflow(harness):
    instance_id = harness.dispatch(Signaller("sig"))
    harness.run()
    assert harness.result(instance_id) == "from task"

"""Pause, resume, kill, ids and environments."""
from __future__ import annotations

import pytest
from flowlib.tasks import Ping
from flowlib.workflows import EventFlow, Sequential, WaitWithTimeout

from tests.store_helpers import next_wakeup
from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.errors import DuplicateInstanceError, StateError
from zenaton.exceptions import InstanceStateError, InvalidArgumentError, UnknownInstanceError


def test_pause_stops_new_steps_and_resume_continues(harness):
    instance_id = harness.dispatch(Sequential(1))
    harness.engine.step()  # first task scheduled and (inline) run; its result is not yet recorded
    harness.runtime.control(Sequential, "seq-1", "pause")
    harness.run()
    assert harness.status(instance_id) == "paused"
    kinds = harness.kinds(instance_id)
    assert "task_completed:1:Add" in kinds  # the running task finished and was recorded
    assert "task_scheduled:2:Add" not in kinds  # but nothing new was scheduled
    harness.runtime.control(Sequential, "seq-1", "resume")
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == 12
    assert harness.kinds(instance_id).index("resumed") < harness.kinds(instance_id).index("task_scheduled:2:Add")


def test_events_sent_while_paused_are_delivered_on_resume(harness):
    instance_id = harness.dispatch(EventFlow("p"))
    harness.run()
    harness.runtime.control(EventFlow, "p", "pause")
    harness.run()
    harness.runtime.send_event(EventFlow, "p", Ping("while paused"))
    harness.run()
    assert harness.status(instance_id) == "paused"
    harness.runtime.control(EventFlow, "p", "resume")
    harness.run()
    assert harness.result(instance_id) == ["before", "while paused", ["while paused"], 1]


def test_kill_ends_the_instance_and_nothing_further_runs(harness):
    instance_id = harness.dispatch(WaitWithTimeout("k"))
    harness.run()
    harness.runtime.control(WaitWithTimeout, "k", "kill")
    harness.run()
    assert harness.status(instance_id) == "killed"
    harness.advance(10)
    assert harness.kinds(instance_id)[-1] == "killed"
    assert next_wakeup(harness.store) is None


def test_operations_refused_in_the_wrong_state(harness):
    instance_id = harness.dispatch(EventFlow("s"))
    harness.run()
    with pytest.raises(InstanceStateError, match="cannot resume"):
        harness.runtime.control(EventFlow, "s", "resume")
    with pytest.raises(StateError, match="no error to retry"):
        harness.control.pause(harness.instance(instance_id))
        harness.run()
        harness.control.retry(harness.instance(instance_id))
    harness.runtime.control(EventFlow, "s", "kill")
    harness.run()
    with pytest.raises(UnknownInstanceError):
        harness.runtime.control(EventFlow, "s", "pause")
    with pytest.raises(UnknownInstanceError):
        harness.runtime.send_event(EventFlow, "s", Ping())


def test_duplicate_custom_id_refused_among_unfinished_instances(harness):
    harness.dispatch(EventFlow("dup"))
    with pytest.raises(DuplicateInstanceError, match="dup"):
        harness.dispatch(EventFlow("dup"))
    harness.runtime.control(EventFlow, "dup", "kill")
    harness.run()
    harness.dispatch(EventFlow("dup"))  # free again once the first has finished


def test_environments_are_isolated(harness):
    staging = Control(harness.store, harness.project.codec, "staging")
    staging_runtime = ClientRuntime(staging, env_from_client=False)
    harness.dispatch(EventFlow("same"))
    staging.dispatch(EventFlow("same"))  # same id, other environment: allowed
    harness.run()
    staging_runtime.send_event(EventFlow, "same", Ping("staging only"))
    harness.run()
    dev = harness.runtime.find(EventFlow, "same")
    stage = staging_runtime.find(EventFlow, "same")
    assert dev.pings == [] and stage.pings == ["staging only"]


def test_invalid_ids_and_jobs_are_refused(harness):
    class BadId(Sequential):
        def id(self):
            return 1.5

    class LongId(Sequential):
        def id(self):
            return "x" * 257

    with pytest.raises(InvalidArgumentError, match="string or an integer"):
        harness.dispatch(BadId(1))
    with pytest.raises(InvalidArgumentError, match="256"):
        harness.dispatch(LongId(1))
    assert harness.store.list_instances() == []

"""Workflows driven step by step through the engine, on sqlite and memory stores."""
from __future__ import annotations

import dataclasses

import pytest
from flowlib.tasks import Ping
from flowlib.workflows import (
    Branching,
    Child,
    Fanout,
    FireAndForget,
    Greeting,
    GreetingV0,
    Long,
    Parent,
    Sequential,
)

from zenaton_runtime.models import InstanceStatus, Kind


def test_sequential_runs_tasks_in_order_and_records_each_step(harness):
    instance_id = harness.dispatch(Sequential(3))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == 14
    assert harness.kinds(instance_id) == [
        "started",
        "task_scheduled:1:Add", "task_completed:1:Add",
        "task_scheduled:2:Add", "task_completed:2:Add",
        "completed",
    ]
    assert harness.properties(instance_id) == {"x": 3, "results": [4, 14]}


@pytest.mark.parametrize("x, branch, result", [(9, "big", "big"), (2, "small", "small")])
def test_branching_on_a_task_result(harness, x, branch, result):
    instance_id = harness.dispatch(Branching(x))
    harness.run()
    assert harness.result(instance_id) == result
    assert harness.properties(instance_id)["branch"] == branch
    assert harness.kinds(instance_id)[3] == "task_scheduled:2:Echo"


def test_parallel_returns_a_list_in_order(harness):
    instance_id = harness.dispatch(Fanout(4))
    harness.run()
    assert harness.result(instance_id) == [100, 101, 102, 103]
    assert harness.properties(instance_id)["total"] == 406
    scheduled = [k for k in harness.kinds(instance_id) if k.startswith("task_scheduled")]
    assert scheduled == [f"task_scheduled:{p}:Add" for p in range(1, 5)]


def test_fire_and_forget_task_and_child_workflow_run_as_their_own_instances(harness):
    parent_id = harness.dispatch(FireAndForget())
    harness.run()
    assert harness.result(parent_id) == 2
    assert harness.kinds(parent_id)[1:3] == ["dispatched:1:Echo", "dispatched:2:Child"]
    children = harness.store.list_instances(parent_id=parent_id)
    by_kind = {c.kind: c for c in children}
    assert set(by_kind) == {Kind.TASK, Kind.WORKFLOW}
    assert all(c.status is InstanceStatus.COMPLETED for c in children)
    assert harness.result(by_kind[Kind.WORKFLOW].id) == "child from-parent"


def test_dispatch_inside_a_workflow_is_not_repeated_on_replay(harness):
    harness.engine.cache.capacity = 0  # every step replays from the start
    parent_id = harness.dispatch(FireAndForget())
    harness.run()
    assert harness.status(parent_id) == "completed"
    assert len(harness.store.list_instances(parent_id=parent_id)) == 2


def test_executing_a_child_workflow_waits_for_its_result(harness):
    parent_id = harness.dispatch(Parent())
    harness.run()
    assert harness.result(parent_id) == "child executed"
    assert harness.kinds(parent_id) == [
        "started", "dispatched:1:Child", "child_completed:1:Child", "completed",
    ]
    (child,) = harness.store.list_instances(parent_id=parent_id)
    assert child.name == "Child" and child.parent_position == 1


def test_version_runs_newest_for_new_instances(harness):
    instance_id = harness.dispatch(Greeting("ada"))
    harness.run()
    instance = harness.instance(instance_id)
    assert (instance.name, instance.version) == ("Greeting", "GreetingV1")
    assert harness.result(instance_id) == "v1 ada"


def test_running_instance_keeps_the_version_it_started_with(harness):
    # An instance recorded when GreetingV0 was the newest version.
    from zenaton_runtime.instances import new_instance

    old = GreetingV0("bob")
    record, started, _ = new_instance(harness.project.codec, old, env="dev", now=harness.clock.now())
    record = dataclasses.replace(record, name="Greeting", version="GreetingV0")
    harness.store.create_instance(record, started)
    harness.run()
    assert harness.result(record.id) == "v0 bob"
    assert harness.instance(record.id).version == "GreetingV0"


def test_long_workflow_properties_follow_each_step(harness):
    instance_id = harness.dispatch(Long(20))
    harness.run()
    assert harness.result(instance_id) == 20
    snapshots = [e.properties for e in harness.store.journal(instance_id) if e.properties]
    assert len(snapshots) >= 20


def test_where_id_find_returns_the_workflow_with_current_properties(harness):
    instance_id = harness.dispatch(Sequential(5))
    harness.run()
    found = harness.runtime.find(Sequential, "seq-5")
    assert isinstance(found, Sequential)
    assert found.results == [6, 16]
    assert harness.runtime.find(Sequential, "nope") is None
    assert harness.status(instance_id) == "completed"


def test_events_are_ignored_by_finished_instances_with_a_clear_error(harness):
    from zenaton_runtime.errors import StateError

    harness.dispatch(Child("x"))
    harness.run()
    (instance,) = harness.store.list_instances(name="Child")
    with pytest.raises(StateError, match="not delivered"):
        harness.control.send_event(instance, Ping(1))

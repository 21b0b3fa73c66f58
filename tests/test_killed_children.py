"""A child workflow killed while its parent waits on it: the parent is paused with the error (as for
a task that failed for good), and a rewind of either of them lets it go on."""
from __future__ import annotations

import json

from flowlib.extra import TwoChildren  # type: ignore[import-not-found]
from flowlib.workflows import EventFlow, FireAndForget, Parent  # type: ignore[import-not-found]

from zenaton_runtime.client.inspect_views import instance_view
from zenaton_runtime.client.rewind_request import request_rewind
from tests.harness import Harness


def start_then_kill_the_child(h: Harness, steps: int = 1) -> tuple[str, str]:
    """Kill the child after ``steps`` engine steps: 1, before it ran; 2, once its task was scheduled."""
    parent_id = h.dispatch(Parent())
    for _ in range(steps):
        h.engine.step()
    (child,) = h.store.list_instances(parent_id=parent_id)
    h.control.kill(child)
    h.run()
    assert h.status(child.id) == "killed"
    return parent_id, child.id


def test_a_killed_child_pauses_the_parent_that_waits_on_it(harness: Harness) -> None:
    parent_id, child_id = start_then_kill_the_child(harness)
    assert harness.status(parent_id) == "paused"
    error = harness.error(parent_id)
    assert error["class"] == "ChildWorkflowKilled"
    assert (error["position"], error["child_id"]) == (1, child_id)
    assert "rewind this instance to step 1" in error["message"]
    assert harness.kinds(parent_id) == ["started", "dispatched:1:Child", "error:1:ChildWorkflowKilled"]
    view = instance_view(harness.instance(parent_id), harness.store.journal(parent_id))
    child_step, error_step = view["steps"]
    assert (child_step["kind"], child_step["status"]) == ("workflow", "killed")
    assert error_step["error"]["child_id"] == child_id


def test_resuming_the_parent_of_a_killed_child_pauses_it_again(harness: Harness) -> None:
    parent_id, _ = start_then_kill_the_child(harness)
    harness.control.resume(harness.instance(parent_id))
    harness.run()
    assert harness.status(parent_id) == "paused"
    assert harness.kinds(parent_id)[-2:] == ["resumed", "error:1:ChildWorkflowKilled"]


def test_rewinding_the_parent_starts_a_new_child(harness: Harness) -> None:
    parent_id, child_id = start_then_kill_the_child(harness)
    request_rewind(harness.store, harness.instance(parent_id), 1)
    harness.run()
    assert harness.result(parent_id) == "child executed"
    children = {c.id: c for c in harness.store.list_instances(parent_id=parent_id)}
    assert children[child_id].parent_position is None  # the killed one, detached
    assert sorted(c.status.value for c in children.values()) == ["completed", "killed"]


def test_rewinding_the_child_then_resuming_the_parent_goes_on(harness: Harness) -> None:
    parent_id, child_id = start_then_kill_the_child(harness, steps=2)
    assert harness.kinds(child_id)[:2] == ["started", "task_scheduled:1:Echo"]
    request_rewind(harness.store, harness.instance(child_id), 1)
    harness.run()
    assert harness.status(child_id) == "completed"
    assert harness.status(parent_id) == "paused"  # the result waits in its journal
    harness.control.resume(harness.instance(parent_id))
    harness.run()
    assert harness.result(parent_id) == "child executed"


def test_a_parent_paused_by_hand_learns_of_its_killed_child(harness: Harness) -> None:
    parent_id = harness.dispatch(Parent())
    harness.engine.step()
    (child,) = harness.store.list_instances(parent_id=parent_id)
    harness.control.pause(harness.instance(parent_id))
    harness.control.kill(child)
    harness.run()
    assert harness.status(parent_id) == "paused"
    assert harness.error(parent_id)["class"] == "ChildWorkflowKilled"


def test_a_dispatched_child_that_is_killed_leaves_its_parent_alone(harness: Harness) -> None:
    parent_id = harness.dispatch(FireAndForget())
    harness.engine.step()
    children = harness.store.list_instances(parent_id=parent_id)
    for child in children:
        harness.control.kill(child)
    harness.run()
    assert harness.status(parent_id) == "completed"


def kill_children_of_two(h: Harness, *which: int) -> tuple[str, dict[int, str]]:
    """A Parallel of two children; kill those at the positions ``which``."""
    parent_id = h.dispatch(TwoChildren())
    h.engine.step()
    children = {c.parent_position: c for c in h.store.list_instances(parent_id=parent_id)}
    for position in which:
        h.control.kill(children[position])
    h.run()
    return parent_id, {p: c.id for p, c in children.items()}  # type: ignore[misc]


def test_two_killed_children_name_the_first_and_a_rewind_there_goes_on(harness: Harness) -> None:
    parent_id, _ = kill_children_of_two(harness, 1, 2)
    assert harness.status(parent_id) == "paused"
    assert harness.error(parent_id)["position"] == 1  # the step to rewind to, whichever came last
    request_rewind(harness.store, harness.instance(parent_id), 1)
    harness.run()
    assert harness.result(parent_id) == ["child a", "child b"]


def test_a_rewind_that_keeps_a_killed_child_pauses_again(harness: Harness) -> None:
    parent_id, children = kill_children_of_two(harness, 1)
    request_rewind(harness.store, harness.instance(parent_id), 2)  # step 1 and its killed child are kept
    harness.run()
    assert harness.status(parent_id) == "paused"
    error = harness.error(parent_id)
    assert (error["class"], error["position"], error["child_id"]) == ("ChildWorkflowKilled", 1, children[1])
    request_rewind(harness.store, harness.instance(parent_id), 1)
    harness.run()
    assert harness.result(parent_id) == ["child a", "child b"]


def test_a_child_killed_item_without_a_killed_child_is_ignored(harness: Harness) -> None:
    target = harness.dispatch(EventFlow("target"))  # waits on an event; no child at all
    harness.run()
    for data in (json.dumps({"position": 1, "id": "0" * 32}), "not json"):
        harness.store.post(target, "child_killed", "Nobody", data)
        harness.run()
        assert harness.status(target) == "running" and harness.error(target) is None

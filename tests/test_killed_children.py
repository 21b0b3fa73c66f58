"""A child workflow killed while its parent waits on it: the parent is paused with the error (as for
a task that failed for good), and a rewind of either of them lets it go on."""
from __future__ import annotations

from flowlib.workflows import Parent  # type: ignore[import-not-found]

from runtime.rewind import request_rewind
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
    from flowlib.workflows import FireAndForget  # type: ignore[import-not-found]

    parent_id = harness.dispatch(FireAndForget())
    harness.engine.step()
    children = harness.store.list_instances(parent_id=parent_id)
    for child in children:
        harness.control.kill(child)
    harness.run()
    assert harness.status(parent_id) == "completed"

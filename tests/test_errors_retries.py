"""Task failures: automatic retries, pausing with the error, manual retry."""
from __future__ import annotations

import json

import pytest
from flowlib.tasks import FLAGS, Fragile
from flowlib.workflows import FragileFlow, ParallelFragile, Raising, RetryFlow


@pytest.fixture
def failing():
    FLAGS["fail_always"] = True
    yield FLAGS
    FLAGS["fail_always"] = False


def test_automatic_retries_with_growing_delays(harness):
    instance_id = harness.dispatch(RetryFlow(succeed_at=3))
    harness.run()
    assert harness.kinds(instance_id)[-1] == "task_failed:1:Flaky"
    for delay in (5, 10, 15):
        harness.advance(delay - 0.001)
        failures = harness.kinds(instance_id).count("task_failed:1:Flaky")
        harness.advance(0.001)
        assert harness.kinds(instance_id).count("task_failed:1:Flaky") + ("task_completed:1:Flaky" in harness.kinds(instance_id)) == failures + 1
    assert harness.result(instance_id) == 3  # the retry_index the successful attempt saw
    failed = [json.loads(e.data) for e in harness.store.journal(instance_id) if e.type.value == "task_failed"]
    assert [f["retry_in"] for f in failed] == [5, 10, 15]
    assert [f["error"]["class"] for f in failed] == ["ConnectionError"] * 3


def test_retries_stop_after_the_rule_says_no_and_the_instance_pauses(harness):
    instance_id = harness.dispatch(RetryFlow(succeed_at=99))
    harness.run()
    for delay in (5, 10, 15):
        harness.advance(delay)
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "ConnectionError"
    assert "flaky failure at retry_index 3" in error["message"]
    assert "Traceback" in error["traceback"]
    assert harness.kinds(instance_id).count("task_failed:1:Flaky") == 4  # four attempts in all


def test_error_pauses_then_retry_completes(harness, failing):
    instance_id = harness.dispatch(FragileFlow())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert (error["class"], error["message"], error["position"], error["task"]) == ("ValueError", "fragile failed", 1, "Fragile")
    assert harness.properties(instance_id)["step"] == 1
    failing["fail_always"] = False
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["fine", "after"]
    assert harness.error(instance_id) is None
    assert "retried" in harness.kinds(instance_id)


def test_resume_of_an_error_paused_instance_retries_the_task(harness, failing):
    instance_id = harness.dispatch(FragileFlow())
    harness.run()
    failing["fail_always"] = False
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    assert harness.result(instance_id) == ["fine", "after"]


def test_in_a_parallel_only_the_failed_task_is_rerun(harness, failing):
    instance_id = harness.dispatch(ParallelFragile())
    harness.run()
    assert harness.status(instance_id) == "paused"
    failing["fail_always"] = False
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.result(instance_id) == [2, "fine", 4]
    kinds = harness.kinds(instance_id)
    assert kinds.count("task_completed:1:Add") == 1 and kinds.count("task_completed:3:Add") == 1
    assert kinds.count("task_failed:2:Fragile") == 1 and kinds.count("task_completed:2:Fragile") == 1


def test_workflow_code_raising_pauses_with_the_error(harness):
    instance_id = harness.dispatch(Raising())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "RuntimeError" and error["message"] == "workflow code broke"
    assert "raise RuntimeError" in error["traceback"]


def test_standalone_task_fails_and_can_be_retried(harness, failing):
    instance_id = harness.dispatch(Fragile())
    harness.run()
    assert harness.status(instance_id) == "failed"
    assert harness.error(instance_id)["class"] == "ValueError"
    failing["fail_always"] = False
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.kinds(instance_id)[-1] == "task_completed:0:Fragile"


def test_standalone_task_follows_the_retry_rules(harness):
    from flowlib.tasks import Flaky

    instance_id = harness.dispatch(Flaky(2))
    harness.run()
    harness.advance(5)
    harness.advance(10)
    assert harness.status(instance_id) == "completed"
    assert harness.kinds(instance_id).count("task_failed:0:Flaky") == 2

"""Hard cases found by reviewing the engine: each test states the invariant it guards."""
from __future__ import annotations

import gc
import os
import selectors

import pytest
from flowlib import review
from flowlib.tasks import FLAGS, Ping
from flowlib.workflows import EventFlow, FireAndForget, RetryFlow, Sequential

from tests.store_helpers import next_wakeup
from zenaton_runtime.store.ops import CreateInstance
from tests.e2e import Daemon, Signals, make_project, zenaton


@pytest.fixture
def failing():
    FLAGS["fail_always"] = True
    yield FLAGS
    FLAGS["fail_always"] = False


def after(kinds: list[str], marker: str) -> list[str]:
    return kinds[kinds.index(marker) + 1:]


# -- errors and retries -------------------------------------------------------------


def test_retry_of_a_parallel_where_two_tasks_failed_reruns_both(harness, failing):
    """Parallel(Fragile, Fragile, Add): both Fragile tasks fail for good.

    Activation._task_outcome calls _pause_with_error for each failure; the second one
    replaces instance.error, so error["task_id"] names only the last failed task.
    _continue re-queues just that one; the other stays FAILED forever and the
    instance is left "running" with nothing queued: it never completes and can no
    longer be retried (status is running, error is None).
    """
    instance_id = harness.dispatch(review.TwoFragile())
    harness.run()
    assert harness.status(instance_id) == "paused"
    failing["fail_always"] = False
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["fine", "fine", 2]


def test_a_scheduled_retry_does_not_run_while_the_instance_is_paused(harness):
    """pause: "no new steps are scheduled". A retry attempt queued 5 s ahead is not a task
    already running, yet a claim that ignored its instance's status would take it,
    so it runs (and its result is recorded) while the instance is paused. The same holds
    for any queued task that has not found a free worker yet."""
    instance_id = harness.dispatch(RetryFlow(succeed_at=1))
    harness.run()
    assert harness.kinds(instance_id)[-1] == "task_failed:1:Flaky"
    harness.control.pause(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "paused"
    harness.advance(10)
    assert [k for k in after(harness.kinds(instance_id), "paused") if k.startswith("task_")] == []


def test_a_result_that_cannot_be_decoded_is_kept_and_retry_continues(harness, monkeypatch):
    """Activation._task_outcome marks the task DONE, then decodes its result; on
    SerializationError it pauses and returns *before* appending task_completed. The
    result is gone: after the code is fixed, retry/resume replays to position 1 and
    blocks forever (the task is DONE, no error task_id to re-queue). While the
    instance is paused the same outcome is journaled without decoding, so the two
    paths disagree."""
    instance_id = harness.dispatch(review.PickyFlow())
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "SerializationError"
    monkeypatch.setattr(review.Picky, "__new__", lambda cls, value=None: object.__new__(cls))  # the fix
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == 7


# -- replay ---------------------------------------------------------------------------


def test_a_journaled_event_class_removed_from_the_code_pauses_instead_of_crashing(harness, monkeypatch):
    """Activation._rebuild guards decoding the workflow but not its inputs: _deliver
    decodes every journaled event and result unguarded. An event class removed or
    renamed in a deploy makes every rebuild of that instance raise out of
    Engine.step: the daemon dies, and dies again after each restart (poison pill)."""
    instance_id = harness.dispatch(review.WaitPing("gone"))
    harness.run()
    harness.control.send_event(harness.instance(instance_id), review.Doomed("old"))
    harness.run()
    monkeypatch.delattr(review, "Doomed")  # the class is gone from the project
    harness.engine.cache.evict(instance_id)  # as after a daemon restart
    harness.control.send_event(harness.instance(instance_id), Ping("go"))
    harness.run()  # raises SerializationError today
    assert harness.status(instance_id) == "paused"
    assert "Doomed" in harness.error(instance_id)["message"]


def test_an_event_the_daemon_cannot_decode_is_kept_for_after_the_fix(harness, monkeypatch):
    """Activation._on_event (running): decode fails -> pause with error and return without
    journaling the event; the inbox item is consumed, so the event is lost for good
    (after the fix, retry leaves the Wait pending forever). When the instance is
    paused the event is journaled without decoding instead, and the resume's rebuild
    raises out of Engine.step (see the previous test)."""
    instance_id = harness.dispatch(review.WaitsPicky("p"))
    harness.run()
    harness.control.send_event(harness.instance(instance_id), review.PickyEvent("hello"))
    harness.run()
    assert harness.status(instance_id) == "paused"
    monkeypatch.setattr(review.PickyEvent, "__new__", lambda cls, value=None: object.__new__(cls))
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == "hello"


def test_non_determinism_cannot_be_swallowed_by_user_code(harness):
    """WorkflowRun.request raises NonDeterminismError (InternalError -> Exception) inside
    handle(). A workflow that wraps a step in `try/except Exception` catches it, the
    mismatching position is silently skipped and the instance completes on changed
    code instead of pausing with the error naming position and classes."""
    review.Guarded.first = "Add"
    instance_id = harness.dispatch(review.Guarded())
    harness.run()
    try:
        review.Guarded.first = "Echo"  # the code changed while the instance waited
        harness.engine.cache.evict(instance_id)
        harness.control.send_event(harness.instance(instance_id), Ping("go"))
        harness.run()
    finally:
        review.Guarded.first = "Add"
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "NonDeterminismError"


# -- control ---------------------------------------------------------------------------


def test_pause_before_the_first_step_schedules_nothing(harness):
    """run_workflow calls _cached_or_rebuilt() before the inbox; on a cache miss the
    rebuild starts handle() and _rebuild commits its decisions right away. A pause
    posted before the first step (or processed after a restart/eviction together with
    new decisions) therefore still schedules and runs the first task. The inbox
    comment ("first, so a pause or kill stops what the other inputs would start")
    only holds for the sticky path."""
    instance_id = harness.dispatch(Sequential(5))
    harness.control.pause(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert not any(k.startswith("task_") for k in harness.kinds(instance_id))


def test_kill_before_the_first_step_dispatches_nothing(harness):
    """Same root cause: the kill is read after _rebuild has already decided the first
    batch. cancel_tasks drops the instance's own task, but the dispatched Echo task and
    Child workflow instances are created and run although the instance was killed."""
    instance_id = harness.dispatch(FireAndForget())
    harness.control.kill(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "killed"
    assert [i.id for i in harness.store.list_instances()] == [instance_id]


def test_no_timer_is_left_for_a_wait_satisfied_during_a_rebuild(harness):
    """Resume after the step result and the event both arrived while paused: the
    rebuild decides Wait(Ping).seconds(100) *and* satisfies it with the journaled
    event in the same pass, but _decide then still adds the timer (nothing reconciles
    timers with run.pending_waits() after _rebuild). It fires 100 s later and journals
    a spurious timer_fired for a finished wait (harmless to the run today, but a
    wake-up and an entry that should not exist)."""
    instance_id = harness.dispatch(review.TwoWaits())
    harness.engine.step()  # Add scheduled and run; its result is recorded next step
    harness.control.pause(harness.instance(instance_id))
    harness.run()
    harness.control.send_event(harness.instance(instance_id), Ping("a"))
    harness.run()
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    assert harness.kinds(instance_id)[-1] == "wait_started:3:Ping"
    assert next_wakeup(harness.store) is None


# -- children ------------------------------------------------------------------------


def test_executing_a_child_whose_custom_id_is_taken_does_not_hang_the_parent(harness):
    """The store skips a child whose custom id is taken; the parent must not journal it
    as dispatched and wait forever: the decision is refused and the parent paused."""
    harness.dispatch(EventFlow("dup"))
    parent = harness.dispatch(review.ExecutesEventFlow("dup"))
    harness.run()
    assert harness.status(parent) == "paused"
    assert harness.error(parent)["class"] == "DuplicateInstanceError"
    assert not [e for e in harness.store.journal(parent) if e.type.value == "dispatched"]


def test_a_child_custom_id_taken_between_the_decision_and_the_write_pauses_the_parent(harness):
    """A client takes the id after the step checked it: the step's write fails, the step is
    decided again and refuses the child; the parent must not wait on a child never created."""
    parent = harness.dispatch(review.ExecutesEventFlow("race"))
    raced: list[str] = []

    def racing(write):  # type: ignore[no-untyped-def]
        def apply(batch, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not raced and any(type(op) is CreateInstance for op in batch.ops):
                raced.append(harness.dispatch(EventFlow("race")))  # another writer, just before ours
            return write(batch, *args, **kwargs)
        return apply

    harness.store.commit_step = racing(harness.store.commit_step)
    harness.run()  # the step's write fails: the engine stops there, as after any failed write
    assert harness.engine.store_failure is not None
    harness.run()  # decided again
    assert raced and harness.status(raced[0]) == "running"
    assert harness.status(parent) == "paused"
    assert harness.error(parent)["class"] == "DuplicateInstanceError"
    assert not [e for e in harness.store.journal(parent) if e.type.value == "dispatched"]
    assert [i.id for i in harness.store.list_instances(custom_id="race")] == [raced[0]]


def test_a_child_id_that_raises_pauses_the_parent(harness):
    """_decide catches only SerializationError/ExternalError, but _start_instance runs user
    code (job.id(), Version.versions()). Any other exception escapes Engine.step:
    in the daemon that is a crash, repeated after every restart because the instance
    stays ready and is rebuilt to the same decision."""
    instance_id = harness.dispatch(review.StartsBadIdChild())
    harness.run()  # raises KeyError today
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "KeyError"


# -- greenlets -----------------------------------------------------------------------


def test_a_rebuilt_run_is_closed_when_the_instance_pauses(harness):
    """A run rebuilt in an activation is not in the cache yet; when the same activation
    pauses the instance, its suspended handle() must be closed then, not whenever the
    garbage collector runs (which would execute user finally blocks mid-step)."""
    from flowlib.tasks import Pong

    review.CLOSED.clear()
    instance_id = harness.dispatch(review.Finalizing())
    harness.run()
    harness.engine.cache.evict(instance_id)  # as after a daemon restart
    assert review.CLOSED == ["closed"]
    review.CLOSED.clear()
    gc.disable()
    try:
        instance = harness.instance(instance_id)
        harness.control.send_event(instance, Pong())  # delivered: the run is rebuilt ...
        harness.control.pause(instance)  # ... and paused in the same activation
        harness.run()
        assert harness.status(instance_id) == "paused"
        assert review.CLOSED == ["closed"]
    finally:
        gc.enable()
        gc.collect()


# -- daemon (real processes) ------------------------------------------------------


def test_kill9_of_the_daemon_does_not_leave_its_task_running(tmp_path):
    """After kill -9 of the daemon, the worker running an attempt must die too: the
    restarted daemon runs that attempt again, and two runs of one step must never
    overlap (nor a stuck task leak a process forever)."""
    root = make_project(tmp_path)
    signals = Signals(root)
    daemon = Daemon(root).started()
    pidfd = None
    try:
        zenaton(root, "dispatch", "StubbornFlow", "orphan")
        pid = int(signals.expect_prefix("stubborn orphan ").split()[-1])
        pidfd = os.pidfd_open(pid)
        daemon.kill9()
        with selectors.DefaultSelector() as selector:  # readable once the process has exited
            selector.register(pidfd, selectors.EVENT_READ)
            assert selector.select(10), "the worker running the task outlived its daemon"
    finally:
        (root / "gates" / "orphan").touch()
        if daemon.process.poll() is None:
            daemon.kill9()
        if pidfd is not None:
            os.close(pidfd)
        signals.close()


def test_the_daemon_survives_user_code_raising_while_deciding(tmp_path):
    """End to end for test_a_child_id_that_raises_pauses_the_parent: one workflow whose
    child id() raises takes the whole daemon down (run_daemon has no guard around
    engine.step), and a restarted daemon dies again on the same instance."""
    root = make_project(tmp_path)
    daemon = Daemon(root).started()
    try:
        zenaton(root, "dispatch", "StartsBadIdChild")
        daemon.expect(r"StartsBadIdChild \w+: (paused|completed)", timeout=15)
    finally:
        if daemon.process.poll() is None:
            daemon.stop()


@pytest.mark.parametrize("where", ["handle", "on_event"])
def test_an_endless_loop_in_workflow_code_pauses_the_instance_not_the_daemon(harness, where):
    from flowlib.workflows import Spinning

    harness.engine.decision_timeout = 0.2
    instance_id = harness.dispatch(Spinning(where))
    other = harness.dispatch(Sequential(2))
    harness.run()
    if where == "on_event":
        harness.control.send_event(harness.instance(instance_id), Ping())
        harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "DecisionTimeout" and "more than 0.2 s" in error["message"]
    assert harness.status(other) == "completed"  # the engine kept serving the others

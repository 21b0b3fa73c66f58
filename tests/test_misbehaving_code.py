"""Workflow code that misbehaves: the instance stops with a clear error, nothing is lost,
and after a fix ``retry`` continues without re-running completed steps.

(handle() raising is covered by test_errors_retries.py::test_workflow_code_raising_pauses_with_the_error;
an infinite loop in a decision is handled elsewhere.)
"""
from __future__ import annotations

import pytest
from flowlib import chaos
from flowlib.chaos import (
    Exits, Go, InterruptedByEvent, LockTask, ReturnsLock, Shifty, StartsShifty, Swallower, TouchyListener, UsesLockTask,
)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """The task runs the chaos tasks note (one line each: run <task id> <retry index> - <label>)."""
    path = tmp_path / "runs.log"
    monkeypatch.setenv("CHAOS_LOG", str(path))
    return lambda: [line.split(" ", 4)[4] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def broken(monkeypatch):
    """The chaos classes start broken; a test 'deploys the fix' by flipping the flag."""
    for cls in (ReturnsLock, LockTask, TouchyListener):
        monkeypatch.setattr(cls, "broken", True)
    monkeypatch.setattr(Shifty, "CALLS", [])
    return monkeypatch


def fix(monkeypatch, cls):
    monkeypatch.setattr(cls, "broken", False)


# -- a result that cannot be stored ------------------------------------------------------


def test_handle_returning_a_value_that_cannot_be_stored_pauses_and_retry_completes(harness, broken, runs):
    instance_id = harness.dispatch(ReturnsLock())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "SerializationError"
    assert "result" in error["message"] and "lock" in error["message"]
    assert "completed" not in harness.kinds(instance_id)
    fix(broken, ReturnsLock)
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == "fixed"
    assert runs() == ["before-lock"]  # the completed step is not run again
    assert harness.kinds(instance_id).count("task_completed:1:Step") == 1


def test_a_task_returning_a_value_that_cannot_be_stored_fails_its_attempt(harness, broken, runs):
    instance_id = harness.dispatch(UsesLockTask())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "SerializationError" and error["position"] == 1 and error["task"] == "LockTask"
    assert "result" in error["message"] and "lock" in error["message"]
    kinds = harness.kinds(instance_id)
    assert "task_failed:1:LockTask" in kinds and "task_completed:1:LockTask" not in kinds
    fix(broken, LockTask)
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["fixed", "after-lock"]
    assert runs() == ["lock-task", "lock-task", "after-lock"]


# -- an id() that changes between calls -----------------------------------------------------


def test_a_changing_id_is_computed_once_at_dispatch(harness, broken):
    instance_id = harness.dispatch(Shifty("s"))
    assert Shifty.CALLS == ["s"]
    assert harness.instance(instance_id).custom_id == "s-1"
    harness.run()
    harness.engine.cache.evict(instance_id)  # as after a restart: the next input rebuilds by replay
    harness.control.pause(harness.instance(instance_id))
    harness.run()
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    assert harness.runtime.find(Shifty, "s-1").tag == "s"
    harness.runtime.send_event(Shifty, "s-1", Go("go"))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.instance(instance_id).custom_id == "s-1"
    assert Shifty.CALLS == ["s"]  # never asked again: not by replay, pause, resume, find or send_event


def test_a_child_with_a_changing_id_is_dispatched_once(harness, broken):
    parent = harness.dispatch(StartsShifty())
    harness.run()
    assert Shifty.CALLS == ["child"]
    harness.engine.cache.evict(parent)
    harness.control.send_event(harness.instance(parent), Go("done"))
    harness.run()
    assert harness.status(parent) == "completed"
    children = [i for i in harness.store.list_instances() if i.name == "Shifty"]
    assert [(c.custom_id, c.parent_id) for c in children] == [("child-1", parent)]
    assert Shifty.CALLS == ["child"]


# -- on_event raising ------------------------------------------------------------------------


def test_on_event_raising_pauses_keeps_the_event_and_retry_replays_it(harness, broken):
    instance_id = harness.dispatch(TouchyListener("t"))
    harness.run()
    harness.control.send_event(harness.instance(instance_id), Go("bad"))
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "RuntimeError" and error["message"] == "on_event cannot take this"
    assert harness.kinds(instance_id).count("event_received:Go") == 1  # the event that broke it is kept
    fix(broken, TouchyListener)
    harness.engine.cache.evict(instance_id)
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["bad", ["bad"]]  # replayed where it was received
    assert harness.kinds(instance_id).count("task_completed:1:Step") == 1


def test_on_event_raising_on_replay_pauses_instead_of_crashing_the_engine(harness, broken):
    """The event arrives while the instance is paused: journaled, delivered by the resume's
    rebuild, where on_event raises."""
    instance_id = harness.dispatch(TouchyListener("r"))
    harness.run()
    harness.control.pause(harness.instance(instance_id))
    harness.run()
    harness.control.send_event(harness.instance(instance_id), Go("bad"))
    harness.run()
    assert harness.status(instance_id) == "paused" and harness.error(instance_id) is None
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "RuntimeError"
    fix(broken, TouchyListener)
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == ["bad", ["bad"]]


# -- BaseExceptions from user code ------------------------------------------------------------


def test_sys_exit_in_handle_pauses_the_instance(harness, runs):
    instance_id = harness.dispatch(Exits())
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "SystemExit"
    assert runs() == ["before-exit"]


def test_keyboard_interrupt_in_on_event_pauses_the_instance(harness):
    instance_id = harness.dispatch(InterruptedByEvent())
    harness.run()
    harness.control.send_event(harness.instance(instance_id), Go("x"))
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "KeyboardInterrupt"


def test_code_swallowing_the_engines_interrupts_still_gets_the_right_journal(harness, runs, monkeypatch, capfd):
    """except BaseException around each request also catches the interrupt that tears a
    suspended run down (eviction, kill): the old run is left behind (greenlet cannot kill it:
    "GreenletExit did not kill"), but it decides nothing; the rebuilt run and the journal are right."""
    monkeypatch.setattr(Swallower, "SWALLOWED", [])
    first = harness.dispatch(Swallower())
    harness.run()
    harness.engine.cache.evict(first)
    harness.control.send_event(harness.instance(first), Go("x"))
    harness.run()
    assert harness.status(first) == "completed" and harness.result(first) == "x"
    assert harness.kinds(first) == ["started", "task_scheduled:1:Step", "task_completed:1:Step", "wait_started:2:Go",
                                    "event_received:Go", "completed"]
    second = harness.dispatch(Swallower())
    harness.run()
    harness.control.kill(harness.instance(second))
    harness.run()
    assert harness.status(second) == "killed"
    assert harness.kinds(second)[-1] == "killed"
    assert runs() == ["swallower", "swallower"]  # one run of each step: the left-behind runs scheduled nothing
    assert "EngineInterrupt" in Swallower.SWALLOWED
    capfd.readouterr()


def test_the_fixture_classes_are_the_project_ones():
    assert chaos.TouchyListener is TouchyListener

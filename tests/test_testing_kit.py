"""zenaton.testing, tested by using it: the daemon's engine in-process, a fake clock, mocks."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from zenaton.abstracts.workflow import Workflow
from zenaton.tasks.wait import Wait
from zenaton.testing import DocumentError, NonDeterminismError, WorkflowEnvironment, replay

KITPROJ = Path(__file__).parent / "fixtures" / "kitproj"
WorkflowEnvironment(KITPROJ).close()  # imports the project (kitlib) before the names below

from kitlib.flows import (  # noqa: E402
    Approval,
    Approved,
    Charge,
    Child,
    Double,
    EventOnly,
    Fanout,
    Faulty,
    LateApproval,
    MondayMorning,
    Onboarding,
    OnboardingV1,
    OnboardingV2,
    Parent,
    Payment,
    Report,
    Sleeper,
    Waiting,
)

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
DAY = 86400


@pytest.fixture
def zenaton_env() -> Iterator[WorkflowEnvironment]:
    """The plugin's fixture would load this repository's demo project (its zenaton.toml is the
    nearest): these tests use the kit's own project instead."""
    with WorkflowEnvironment(KITPROJ) as env:
        yield env


# -- waits, on the fake clock ---------------------------------------------------------------------

def test_a_three_day_wait_completes_without_real_time_passing(zenaton_env: WorkflowEnvironment) -> None:
    started = time.monotonic()
    run = zenaton_env.dispatch(Sleeper(4))
    run.until_waiting()
    assert run.status == "running"
    assert [(s.kind, s.status) for s in run.steps] == [("wait", "waiting")]
    assert run.properties()["woke"] is False
    assert run.until_complete() == 8
    assert zenaton_env.now == START + dt.timedelta(days=3)
    assert time.monotonic() - started < 2
    assert [(s.kind, s.name, s.status) for s in run.steps] == [("wait", "Wait", "timed out"), ("task", "Double", "completed")]
    assert run.properties(step=1)["woke"] is True  # as the wait ended: handle() went on to the next step
    assert run.properties(step=2) == {"n": 4, "woke": True}
    assert run.step(2).result == 8


def test_advance_fires_the_wait_at_its_own_time_and_not_before(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Sleeper(1))
    run.until_waiting()
    zenaton_env.advance(days=2, hours=23)
    assert run.status == "running"
    zenaton_env.advance(hours=1)
    assert run.status == "completed" and run.result == 2


def test_a_calendar_wait_ends_next_monday_at_eight(zenaton_env: WorkflowEnvironment) -> None:
    zenaton_env.advance_to(dt.datetime(2024, 1, 3, 15, 30))  # a Wednesday, naive: the project's timezone (UTC)
    run = zenaton_env.dispatch(MondayMorning())
    assert run.until_complete() == "monday"
    assert zenaton_env.now == dt.datetime(2024, 1, 8, 8, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("builders", "fires"),
    [
        ([["seconds", 30]], dt.datetime(2024, 1, 1, 0, 0, 30)),
        ([["minutes", 5]], dt.datetime(2024, 1, 1, 0, 5)),
        ([["hours", 2]], dt.datetime(2024, 1, 1, 2)),
        ([["days", 3]], dt.datetime(2024, 1, 4)),
        ([["weeks", 1]], dt.datetime(2024, 1, 8)),
        ([["months", 1]], dt.datetime(2024, 2, 1)),
        ([["years", 1]], dt.datetime(2025, 1, 1)),
        ([["at", "15:00"]], dt.datetime(2024, 1, 1, 15)),
        ([["day_of_month", 12]], dt.datetime(2024, 1, 12)),
        ([["tuesday"]], dt.datetime(2024, 1, 2)),
        ([["monday"]], dt.datetime(2024, 1, 8)),  # it is Monday already: the next one
        ([["friday"], ["at", "18:30"]], dt.datetime(2024, 1, 5, 18, 30)),
        ([["timestamp", 1_704_200_000]], dt.datetime(2024, 1, 2, 12, 53, 20)),
        ([["set_timezone", "Europe/Paris"], ["at", "9:00"]], dt.datetime(2024, 1, 1, 8)),  # 9:00 in Paris, UTC+1
    ],
)
def test_each_wait_builder_fires_on_the_fake_clock_at_its_time(
    zenaton_env: WorkflowEnvironment, builders: list[list[object]], fires: dt.datetime
) -> None:
    started = time.monotonic()
    run = zenaton_env.dispatch(Waiting(builders))
    assert run.until_complete() == "done"
    assert zenaton_env.now == fires.replace(tzinfo=dt.timezone.utc)
    assert run.step(1).view["fire_at"] == fires.isoformat() + "Z"
    assert time.monotonic() - started < 2


def test_until_complete_within_a_limit_says_what_the_run_waits_for(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Sleeper(1))
    with pytest.raises(AssertionError) as failure:
        run.until_complete(within=dt.timedelta(days=1))
    message = str(failure.value)
    assert "did not complete: it still waits for a wait until 2024-01-04T00:00:00Z" in message
    assert "1  wait      Wait" in message


# -- tasks: real, mocked, failing and retried ----------------------------------------------------

def test_a_task_mocked_to_fail_twice_succeeds_on_its_third_attempt_after_the_retry_delays(
    zenaton_env: WorkflowEnvironment,
) -> None:
    def flaky(task: Charge) -> dict[str, int]:
        if len(mock.calls) < 3:
            raise ConnectionError("the bank is down")
        return {"charged": task.amount, "attempt": len(mock.calls)}

    mock = zenaton_env.mock_task(Charge, flaky)
    run = zenaton_env.dispatch(Payment(30))
    run.until_waiting()
    (step,) = run.steps
    assert (step.status, step.attempts) == ("retrying", 1)
    assert step.error["class"] == "ConnectionError"
    assert run.until_complete() == {"charged": 30, "attempt": 3}
    assert mock.call_count == 3 and [task.amount for task in mock.calls] == [30, 30, 30]
    assert zenaton_env.now == START + dt.timedelta(seconds=120)  # on_error_retry_delay: 60 s, twice
    (step,) = run.steps
    assert (step.status, step.attempts, step.result) == ("completed", 3, {"charged": 30, "attempt": 3})
    assert run.properties()["receipt"] == {"charged": 30, "attempt": 3}


def test_mock_returns_raises_and_the_real_task(zenaton_env: WorkflowEnvironment) -> None:
    assert zenaton_env.dispatch(Payment(5)).until_complete() == {"charged": 5}  # the real handle()
    zenaton_env.mock_task(Charge, returns="mocked")
    assert zenaton_env.dispatch(Payment(5)).until_complete() == "mocked"
    zenaton_env.mock_task(Charge, raises=PermissionError)
    run = zenaton_env.dispatch(Payment(5))
    with pytest.raises(AssertionError, match="did not complete: it is paused"):
        run.until_complete()
    assert run.error["class"] == "PermissionError"
    assert run.steps[0].attempts == 4  # the first attempt and three retries, a minute apart
    zenaton_env.unmock_task(Charge)
    run.retry()
    assert run.status == "completed" and run.result == {"charged": 5}


def test_mock_task_refuses_what_it_cannot_use(zenaton_env: WorkflowEnvironment) -> None:
    with pytest.raises(TypeError, match="exactly one of"):
        zenaton_env.mock_task(Charge)
    with pytest.raises(TypeError, match="exactly one of"):
        zenaton_env.mock_task(Charge, returns=1, raises=ValueError)
    with pytest.raises(TypeError, match="takes a Task class"):
        zenaton_env.mock_task(Payment, returns=1)


def test_a_standalone_task(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Double(21))
    assert run.until_complete() == 42
    assert [(s.kind, s.status) for s in run.steps] == []  # a task has no steps of its own ...
    assert [(s.kind, s.status, s.result) for s in run.timeline] == [("task", "completed", 42)]  # ... its attempts


# -- events, controls, where_id ----------------------------------------------------------------

def test_an_event_sent_while_waiting_ends_the_wait(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Approval("k1")).until_waiting()
    run.send_event(Approved("ada"))
    assert run.status == "completed" and run.result == "approved by ada"
    assert run.properties(step=1)["approved_by"] == "ada"
    assert run.step(1).result.who == "ada"  # the event itself, decoded
    assert [s.kind for s in run.timeline] == ["wait", "event", "completed"]


def test_an_event_sent_before_the_wait_reaches_on_event_but_not_the_wait(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(LateApproval("k2"))
    run.send_event(Approved("bob"))  # before its wait starts: handle() is still on its first task
    assert run.properties()["approved_by"] == "bob"
    assert [s.kind for s in run.timeline] == ["task", "event", "wait"]
    assert run.until_complete() == "timeout"  # the wait did not get it, and timed out two days later
    assert zenaton_env.now == START + dt.timedelta(days=2)
    assert [(s.kind, s.status) for s in run.steps] == [("task", "completed"), ("wait", "timed out")]


def test_where_id_and_the_sdk_go_to_the_environment(zenaton_env: WorkflowEnvironment) -> None:
    Approval("k3").dispatch()  # the SDK's own call, in the test
    Approval.where_id("k3").send_event(Approved("zoe"))
    zenaton_env.run_until_idle()
    run = zenaton_env.find(Approval, "k3")
    assert run is not None and run.result == "approved by zoe"
    assert Approval.where_id("k3").find().approved_by == "zoe"


def test_pause_resume_and_kill(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Sleeper(2)).until_waiting()
    run.pause()
    zenaton_env.advance(days=4)
    assert run.status == "paused"
    run.resume()
    assert run.status == "completed" and run.result == 4
    other = zenaton_env.dispatch(Sleeper(2)).until_waiting()
    other.kill()
    assert other.status == "killed"
    with pytest.raises(AssertionError, match="has no result: it is killed"):
        other.result


# -- parallel, children, schedules, versions ---------------------------------------------------

def test_parallel_tasks(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Fanout(3))
    assert run.until_complete() == [2, 4, 6]
    assert [(s.position, s.kind, s.result) for s in run.steps] == [(1, "parallel", 2), (2, "parallel", 4), (3, "parallel", 6)]
    assert run.properties()["total"] == 12


def test_a_child_workflow(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Parent(5))
    assert run.until_complete() == 11
    (child,) = run.children
    assert child.name == "Child" and child.result == 10 and child.parent == run
    assert [(s.kind, s.name, s.result) for s in run.steps] == [("workflow", "Child", 10)]
    assert zenaton_env.now == START + dt.timedelta(hours=1)  # the child's wait


def test_a_schedule_fires_three_times_over_three_days(zenaton_env: WorkflowEnvironment) -> None:
    zenaton_env.schedule(Report(), "0 9 * * *")
    zenaton_env.advance(days=3)
    runs = zenaton_env.runs(Report)
    assert [(r.status, r.result) for r in runs] == [("completed", 42)] * 3
    created = [dt.datetime.fromtimestamp(r.instance.created_at, dt.timezone.utc) for r in runs]
    assert created == [START + dt.timedelta(days=d, hours=9) for d in range(3)]


def test_a_version_upgrade_keeps_running_instances_on_their_version(
    zenaton_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = zenaton_env.dispatch(Onboarding("ada")).until_waiting()
    assert old.version == "OnboardingV1"
    monkeypatch.setattr(Onboarding, "versions", lambda self: [OnboardingV1, OnboardingV2])  # the deploy
    new = zenaton_env.dispatch(Onboarding("bob")).until_waiting()
    assert new.version == "OnboardingV2"
    zenaton_env.advance(days=1)
    assert (old.result, new.result) == ("v1 ada", "v2 bob")
    assert [s.name for s in old.steps] == ["Wait"]
    assert [s.name for s in new.steps] == ["Double", "Wait"]


# -- reading failures ------------------------------------------------------------------------------

def test_assert_steps_shows_expected_and_actual_steps_and_the_timeline(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(Sleeper(1))
    run.until_complete()
    run.assert_steps("Wait", "Double")
    with pytest.raises(AssertionError) as failure:
        run.assert_steps("Double", "Wait")
    message = str(failure.value)
    assert "expected: ['Double', 'Wait']\n  actual:   ['Wait', 'Double']" in message
    assert "2  task      Double" in message and "completed  -> 2" in message


def test_until_complete_on_a_run_waiting_for_an_event_only(zenaton_env: WorkflowEnvironment) -> None:
    run = zenaton_env.dispatch(EventOnly())
    with pytest.raises(AssertionError, match=r"still waits for event Approved \(no time limit\)"):
        run.until_complete()


def test_the_environment_never_touches_a_real_store(zenaton_env: WorkflowEnvironment) -> None:
    assert type(zenaton_env.store).__name__ == "MemoryStore"
    assert not (KITPROJ / ".zenaton").exists()


# -- replaying an exported journal --------------------------------------------------------------

def test_replay_of_an_exported_journal_both_ways(zenaton_env: WorkflowEnvironment, tmp_path: Path) -> None:
    run = zenaton_env.dispatch(Sleeper(3))
    run.until_complete()
    path = tmp_path / "sleeper.json"
    document = run.export(path)
    assert json.loads(path.read_text()) == document
    assert document["format"] == "zenaton-journal" and document["version"] == 1

    replayed = replay(path, Sleeper)  # the same code: it replays to the end
    assert replayed.completed and replayed.result == 6 and replayed.properties["woke"] is True

    with pytest.raises(NonDeterminismError) as failure:
        replay(document, SleeperThatCharges)  # position 2: the journal holds task Double
    assert (failure.value.position, failure.value.recorded, failure.value.requested) == (2, "task Double", "task Charge")

    waiting = zenaton_env.dispatch(Sleeper(1)).until_waiting().export()
    replayed = replay(waiting, SleeperThatCharges)  # not yet at step 2: nothing to disagree on
    assert not replayed.completed and replayed.next == []


def test_replay_says_what_is_wrong_with_a_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DocumentError, match="is not a zenaton journal export: not JSON"):
        replay(bad, Sleeper)
    with pytest.raises(DocumentError, match="version 2 is not supported"):
        replay({"format": "zenaton-journal", "version": 2}, Sleeper)
    with pytest.raises(DocumentError, match=r"damaged export document: instance\.id is not a string"):
        replay({"format": "zenaton-journal", "version": 1, "instance": {}, "journal": [], "archive": []}, Sleeper)
    with pytest.raises(DocumentError, match="cannot read"):
        replay(tmp_path / "missing.json", Sleeper)


def test_check_store_verdicts_on_the_environment_s_own_store(
    zenaton_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's verdicts, in-process: clean, broken by a changed step, still failing as before."""
    from zenaton_runtime.check.report import check_store

    sleeping = zenaton_env.dispatch(Sleeper(1)).until_waiting()
    faulty = zenaton_env.dispatch(Faulty()).until_waiting()
    assert faulty.status == "paused" and faulty.error["class"] == "ValueError"
    fresh = zenaton_env.dispatch(Sleeper(2))  # not run: nothing journaled but its start

    def check() -> dict[str, object]:
        report = check_store(zenaton_env.store, zenaton_env.project.codec, zenaton_env.env, now=zenaton_env.clock.now())
        return {v.instance.id: (v.outcome, v.reason()) for c in report.classes.values() for v in c.verdicts}

    assert check() == {faulty.id: ("still failing", "ValueError: bad input")}
    monkeypatch.setattr(Sleeper, "handle", lambda self: Charge(self.n).execute())  # a task where the wait was
    assert check() == {
        sleeping.id: ("broken", "position 1: the journal holds wait Wait, the code asks for task Charge"),
        faulty.id: ("still failing", "ValueError: bad input"),
    }
    assert fresh.status == "running" and fresh.steps == []
    monkeypatch.setattr(Faulty, "handle", lambda self: Double(1).execute() and None)  # fixed: it would complete
    assert faulty.id not in check()


# -- the SDK's layers, and the pytest plugin in a new project -----------------------------------

def test_importing_zenaton_testing_imports_the_engine_only_when_a_name_is_used() -> None:
    code = (
        "import sys, zenaton.testing\n"
        "print(sorted(m for m in sys.modules if m.startswith('zenaton_runtime')))\n"
        "zenaton.testing.WorkflowEnvironment\n"
        "print('zenaton_runtime.engine.engine' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


class SleeperThatCharges(Workflow):
    """Sleeper as someone changed it: Charge where Double was."""

    def __init__(self, n: int) -> None:
        self.n = n

    def handle(self) -> object:
        Wait().days(3).execute()
        return Charge(self.n).execute()

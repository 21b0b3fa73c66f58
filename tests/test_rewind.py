"""Rewind: restart an instance from one of its steps, on each instance state."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from flowlib.tasks import FLAGS, Add, Ping
from flowlib.workflows import Changing, EventFlow, Fanout, FragileFlow, Parent, Sequential, WaitWithTimeout

from tests.cli_helpers import ADA, Engineer, daemon, dispatch, fails, invoke, run_json  # noqa: F401  (daemon: a fixture)
from tests.harness import Harness
from zenaton_cli.commands import control as control_commands
from zenaton_runtime.client.control import Control
from zenaton_runtime.client.inspect_views import instance_view, steps
from zenaton_runtime.client.rewind_request import RewindOutcome, RewindRequest, RewindState, answer
from zenaton_runtime.engine.rewind_plan import RewindPlan
from zenaton_runtime.errors import DuplicateInstanceError, NotFoundError, StateError
from zenaton_runtime.models import Entry, InboxKind, JournalEntry, TaskStatus


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def rewind(h: Harness, instance_id: str, position: int) -> RewindPlan:
    request = h.control.rewind(h.instance(instance_id), position)
    h.run()
    assert h.control.rewind_outcome(request).applied
    return request.plan


def archived(h: Harness, instance_id: str) -> list[tuple[int, list[str]]]:
    kinds = []
    for run in h.store.archive(instance_id):
        kinds.append((run.run, [e.type.value + ("" if e.position is None else f":{e.position}") for e in run.entries]))
    return kinds


def pause(h: Harness, instance_id: str) -> None:
    h.control.pause(h.instance(instance_id))
    h.run()
    assert h.status(instance_id) == "paused"


# -- each state ------------------------------------------------------------------------------------

def test_rewind_a_completed_instance_reruns_from_the_step(harness: Harness, flow_log: Path) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.run()
    assert lines(flow_log) == ["Add 1 1", "Add 2 10"]
    plan = rewind(harness, instance_id, 2)
    assert (plan.position, plan.keep_through_seq, plan.run) == (2, 3, 1)
    assert lines(flow_log) == ["Add 1 1", "Add 2 10", "Add 2 10"]  # step 2 ran again, step 1 did not
    assert harness.status(instance_id) == "completed"
    assert harness.result(instance_id) == 12
    assert harness.kinds(instance_id) == [
        "started", "task_scheduled:1:Add", "task_completed:1:Add",  # kept
        "rewound", "task_scheduled:2:Add", "task_completed:2:Add", "completed",  # run 2
    ]
    assert archived(harness, instance_id) == [(1, ["task_scheduled:2", "task_completed:2", "completed"])]
    rewound = harness.store.journal(instance_id)[3]
    data = json.loads(rewound.data or "")
    assert (rewound.seq, data) == (4, {"to_step": 2, "run": 2, "archived": 3, "request": data["request"]})
    assert harness.properties(instance_id)["results"] == [2, 12]


def test_rewind_twice_numbers_the_runs_and_inspect_shows_them_all(harness: Harness, flow_log: Path) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.run()
    rewind(harness, instance_id, 2)
    rewind(harness, instance_id, 1)
    assert lines(flow_log).count("Add 1 1") == 2 and lines(flow_log).count("Add 2 10") == 3
    assert [run for run, _ in archived(harness, instance_id)] == [1, 2]
    assert archived(harness, instance_id)[1][1][:2] == ["task_scheduled:1", "task_completed:1"]
    instance = harness.instance(instance_id)
    view = instance_view(instance, harness.store.journal(instance_id), harness.store.archive(instance_id), True)
    assert view["run"] == 3 and "runs" in view
    shape = [(r["run"], r["current"], r["rewound_to"], [(s["kind"], s["position"]) for s in r["steps"]]) for r in view["runs"]]
    assert shape == [
        (1, False, 2, [("task", 1), ("task", 2), ("completed", None)]),
        (2, False, 1, [("task", 1), ("rewind", None), ("task", 2), ("completed", None)]),
        (3, True, None, [("rewind", None), ("task", 1), ("task", 2), ("completed", None)]),
    ]
    assert "runs" not in instance_view(instance, harness.store.journal(instance_id), harness.store.archive(instance_id))


def test_rewind_a_killed_instance_waits_again(harness: Harness) -> None:
    instance_id = harness.dispatch(EventFlow("k"))
    harness.run()
    harness.runtime.control(EventFlow, "k", "kill")
    harness.run()
    rewind(harness, instance_id, 2)
    assert harness.status(instance_id) == "running"
    assert harness.kinds(instance_id) == [
        "started", "task_scheduled:1:Echo", "task_completed:1:Echo", "rewound", "wait_started:2:Ping",
    ]
    assert archived(harness, instance_id) == [(1, ["wait_started:2", "killed"])]
    harness.runtime.send_event(EventFlow, "k", Ping("again"))  # it holds its custom id again
    harness.run()
    assert harness.result(instance_id) == ["before", "again", ["again"], 1]
    assert harness.kinds(instance_id).count("task_scheduled:1:Echo") == 1


def test_rewind_an_error_paused_instance_after_the_fix(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FLAGS, "fail_always", True)
    instance_id = harness.dispatch(FragileFlow())
    harness.run()
    assert harness.status(instance_id) == "paused" and harness.error(instance_id)["class"] == "ValueError"
    (failed,) = harness.store.tasks_of(instance_id)
    monkeypatch.setitem(FLAGS, "fail_always", False)
    rewind(harness, instance_id, 1)
    assert harness.status(instance_id) == "completed" and harness.error(instance_id) is None
    assert harness.result(instance_id) == ["fine", "after"]
    assert archived(harness, instance_id) == [(1, ["task_scheduled:1", "task_failed:1", "error:1"])]
    tasks = {t.id: t.status for t in harness.store.tasks_of(instance_id)}
    assert tasks.pop(failed.id) is TaskStatus.CANCELLED  # the failed task is not retried: step 1 ran anew
    assert set(tasks.values()) == {TaskStatus.DONE}


def test_rewind_a_user_paused_instance_and_an_event_received_before_the_cut_is_kept(harness: Harness) -> None:
    instance_id = harness.dispatch(EventFlow("p"))
    harness.run()
    harness.runtime.send_event(EventFlow, "p", Ping("one"))
    harness.run()
    assert harness.result(instance_id) == ["before", "one", ["one"], 1]
    rewind(harness, instance_id, 3)  # completed; the event came before step 3: kept
    assert harness.result(instance_id) == ["before", "one", ["one"], 1]
    assert archived(harness, instance_id) == [(1, ["task_scheduled:3", "task_completed:3", "completed"])]

    other = harness.dispatch(Sequential(5))
    harness.engine.step()  # step 1 scheduled and run; its result not recorded yet
    pause(harness, other)
    assert harness.kinds(other) == ["started", "task_scheduled:1:Add", "paused", "task_completed:1:Add"]
    rewind(harness, other, 1)
    assert harness.status(other) == "completed" and harness.result(other) == 16
    assert harness.kinds(other) == [
        "started", "rewound", "task_scheduled:1:Add", "task_completed:1:Add",
        "task_scheduled:2:Add", "task_completed:2:Add", "completed",
    ]
    assert archived(harness, other) == [(1, ["task_scheduled:1", "paused", "task_completed:1"])]
    assert harness.properties(other)["results"] == [6, 16]


def test_rewind_a_paused_wait_rearms_its_timer(harness: Harness) -> None:
    instance_id = harness.dispatch(WaitWithTimeout("t"))
    harness.run()
    (timer,) = harness.store.due_timers(1e12, 10)
    harness.clock.advance(2)
    pause(harness, instance_id)
    rewind(harness, instance_id, 1)
    (rearmed,) = harness.store.due_timers(1e12, 10)
    assert rearmed.position == 1 and rearmed.fire_at == timer.fire_at + 2  # a new wait, decided now
    harness.advance(4)
    assert harness.status(instance_id) == "completed" and harness.result(instance_id) is None


def test_rewind_after_a_code_change_runs_the_new_code(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    instance_id = harness.dispatch(Changing())
    harness.run()
    pause(harness, instance_id)
    monkeypatch.setattr(Changing, "first", "Echo")
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    error = harness.error(instance_id)
    assert error["class"] == "NonDeterminismError" and error["position"] == 1
    rewind(harness, instance_id, 2)  # step 1 is kept: the replay stops at it again
    assert harness.error(instance_id)["class"] == "NonDeterminismError"
    assert archived(harness, instance_id)[0][1][0] == "wait_started:2"  # the error marker did not move the cut
    rewind(harness, instance_id, 1)
    assert harness.kinds(instance_id) == ["started", "rewound", "task_scheduled:1:Echo", "task_completed:1:Echo",
                                         "wait_started:2:Ping"]
    harness.control.send_event(harness.instance(instance_id), Ping("ok"))
    harness.run()
    assert harness.result(instance_id) == "ok"


def test_rewind_inside_a_parallel_starts_at_the_parallel(harness: Harness, flow_log: Path) -> None:
    instance_id = harness.dispatch(Fanout(3))
    harness.run()
    plan = rewind(harness, instance_id, 3)
    assert (plan.requested, plan.position) == (3, 1)
    assert sorted(lines(flow_log)) == sorted(["Add 0 100", "Add 1 100", "Add 2 100"] * 2)
    assert harness.result(instance_id) == [100, 101, 102]


# -- in-flight work of the archived steps ---------------------------------------------------------

@pytest.mark.parametrize("arrives", ["with the rewind", "after the rewind"])
def test_a_task_still_running_at_the_rewind_reports_to_no_one(harness: Harness, flow_log: Path, arrives: str) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.engine.step()  # step 1 scheduled and claimed
    held = harness.finished_outcomes()  # its attempt finished, but the daemon has not seen it yet
    pause(harness, instance_id)
    harness.control.rewind(harness.instance(instance_id), 1)
    if arrives == "with the rewind":
        harness.engine.take_outcomes(held)
        harness.run()
    else:
        harness.run()
        harness.engine.take_outcomes(held)
        harness.run()
    assert harness.result(instance_id) == 12
    assert harness.kinds(instance_id) == [
        "started", "rewound", "task_scheduled:1:Add", "task_completed:1:Add",
        "task_scheduled:2:Add", "task_completed:2:Add", "completed",
    ]
    assert lines(flow_log) == ["Add 1 1", "Add 1 1", "Add 2 10"]
    first = harness.store.tasks_of(instance_id)[0]
    assert first.status is TaskStatus.CANCELLED


def test_a_stale_attempt_reporting_while_the_rewound_step_runs_again_is_ignored(
    harness: Harness, flow_log: Path
) -> None:
    """The archived step's attempt reports after the rewind was applied, while the instance runs
    its new attempt of the same step: the stale result reaches neither the journal nor the task."""
    instance_id = harness.dispatch(Sequential(1))
    harness.engine.step()  # step 1 scheduled and claimed
    stale = harness.finished_outcomes()
    pause(harness, instance_id)
    harness.control.rewind(harness.instance(instance_id), 1)
    harness.engine.step()  # the rewind applied; step 1 scheduled again and claimed
    fresh = harness.finished_outcomes()
    harness.engine.take_outcomes(stale)
    harness.engine.step()
    assert harness.kinds(instance_id)[-2:] == ["rewound", "task_scheduled:1:Add"]
    harness.engine.take_outcomes(fresh)
    harness.run()
    assert harness.kinds(instance_id) == [
        "started", "rewound", "task_scheduled:1:Add", "task_completed:1:Add",
        "task_scheduled:2:Add", "task_completed:2:Add", "completed",
    ]
    assert [t.status for t in harness.store.tasks_of(instance_id)] == [TaskStatus.CANCELLED] + [TaskStatus.DONE] * 2


def test_children_of_archived_steps_are_left_alone_and_detached(harness: Harness) -> None:
    parent_id = harness.dispatch(Parent())
    harness.engine.step()  # the child is created
    harness.engine.step()  # the child's task runs
    held = harness.finished_outcomes()
    pause(harness, parent_id)
    plan = rewind(harness, parent_id, 1)
    (old_child,) = plan.children
    assert harness.instance(old_child).parent_position is None
    harness.engine.take_outcomes(held)
    harness.run()
    assert harness.status(old_child) == "completed"  # left alone: it finished on its own
    assert harness.result(parent_id) == "child executed"
    assert harness.kinds(parent_id).count("child_completed:1:Child") == 1
    children = harness.store.list_instances(parent_id=parent_id)
    assert len(children) == 2 and {c.status.value for c in children} == {"completed"}


# -- refusals ------------------------------------------------------------------------------------

def test_rewind_refuses_a_running_instance_a_bad_position_and_a_task(harness: Harness) -> None:
    waiting = harness.dispatch(EventFlow("r"))
    harness.run()
    with pytest.raises(StateError, match="it is running; pause it first"):
        harness.control.rewind(harness.instance(waiting), 1)
    done = harness.dispatch(Sequential(2))
    harness.run()
    for position in (0, 3, -1):
        with pytest.raises(NotFoundError, match=rf"no step at position {position} \(its steps: 1, 2\)"):
            harness.control.rewind(harness.instance(done), position)
    task = harness.dispatch(Add(1, 2))
    harness.run()
    with pytest.raises(StateError, match="only workflows have steps"):
        harness.control.rewind(harness.instance(task), 0)
    assert harness.store.archive(done) == [] and harness.store.inbox(done) == []


def test_rewind_refuses_a_completed_child_whose_parent_has_its_result(harness: Harness) -> None:
    parent_id = harness.dispatch(Parent())
    harness.run()
    (child,) = harness.store.list_instances(parent_id=parent_id)
    with pytest.raises(StateError, match="rewind the parent"):
        harness.control.rewind(child, 1)


def test_rewind_refuses_when_the_custom_id_is_taken_again(harness: Harness) -> None:
    first = harness.dispatch(EventFlow("dup"))
    harness.run()
    harness.runtime.control(EventFlow, "dup", "kill")
    harness.run()
    second = harness.dispatch(EventFlow("dup"))
    harness.run()
    with pytest.raises(DuplicateInstanceError, match=f"held by the unfinished instance {second}"):
        harness.control.rewind(harness.instance(first), 1)
    # The daemon checks again: a rewind posted anyway is refused, and nothing changes.
    before = harness.kinds(first)
    item_id = harness.store.post(first, InboxKind.REWIND, None, json.dumps({"position": 1}))
    harness.run()
    assert harness.status(first) == "killed" and harness.kinds(first) == [*before, "rewind_refused"]
    refused = json.loads(harness.store.journal(first)[-1].data or "")
    assert (refused["request"], refused["to_step"]) == (item_id, 1) and "held by" in refused["reason"]
    assert harness.store.archive(first) == [] and harness.status(second) == "running"


def test_the_daemon_refuses_a_rewind_of_an_instance_resumed_meanwhile(harness: Harness) -> None:
    instance_id = harness.dispatch(EventFlow("m"))
    harness.run()
    pause(harness, instance_id)
    harness.control.resume(harness.instance(instance_id))  # not applied yet: still paused in the store
    request = harness.control.rewind(harness.instance(instance_id), 1)
    assert harness.control.rewind_outcome(request).state is RewindState.PENDING
    harness.run()
    assert harness.status(instance_id) == "running"  # resumed first; then the rewind found it running
    assert harness.kinds(instance_id)[-3:] == ["paused", "resumed", "rewind_refused"]
    assert harness.store.archive(instance_id) == [] and harness.store.inbox(instance_id) == []
    outcome = harness.control.rewind_outcome(request)
    assert outcome.refused and not outcome.applied and outcome.run is None
    assert outcome.reason is not None and "it is running" in outcome.reason


# -- through the control API: the request and the daemon's answer ---------------------------------

def test_control_rewind_dry_run_posts_nothing(harness: Harness) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.run()
    journal = harness.store.journal(instance_id)
    request = harness.control.rewind(harness.instance(instance_id), 2, dry_run=True)
    assert request.item_id is None and request.instance_id == instance_id
    assert (request.plan.position, request.plan.run, len(request.plan.archived)) == (2, 1, 3)
    assert harness.store.inbox(instance_id) == [] and harness.store.journal(instance_id) == journal
    with pytest.raises(ValueError, match="dry run"):
        harness.control.rewind_outcome(request)


def test_control_rewind_is_pending_until_the_daemon_applies_it(harness: Harness) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.run()
    request = harness.control.rewind(harness.instance(instance_id), 2)
    assert request.item_id is not None
    assert [item.id for item in harness.store.inbox(instance_id)] == [request.item_id]
    assert harness.control.rewind_outcome(request) == RewindOutcome(RewindState.PENDING)
    assert not harness.control.applied(instance_id, request.item_id, timeout=0)
    harness.run()
    assert harness.control.applied(instance_id, request.item_id, timeout=0)
    outcome = harness.control.rewind_outcome(request)
    assert (outcome.state, outcome.to_step, outcome.run, outcome.reason) == (RewindState.APPLIED, 2, 2, None)


def test_the_answer_is_found_after_a_later_rewind_archived_it(harness: Harness) -> None:
    instance_id = harness.dispatch(Sequential(1))
    harness.run()
    first = harness.control.rewind(harness.instance(instance_id), 2)
    harness.run()
    second = harness.control.rewind(harness.instance(instance_id), 1)  # archives the first one's entry
    harness.run()
    assert "rewound" in archived(harness, instance_id)[1][1]
    assert harness.control.rewind_outcome(first).run == 2
    assert harness.control.rewind_outcome(second).run == 3


def test_two_requests_planned_against_the_same_run(harness: Harness) -> None:
    instance_id = harness.dispatch(EventFlow("two"))
    harness.run()
    pause(harness, instance_id)
    first = harness.control.rewind(harness.instance(instance_id), 2)
    second = harness.control.rewind(harness.instance(instance_id), 1)
    assert first.plan.run == second.plan.run == 1
    harness.run()
    # The first applies (run 2: the instance waits again); the daemon refuses the second (running).
    assert harness.control.rewind_outcome(first).applied
    assert harness.status(instance_id) == "running" and len(harness.store.archive(instance_id)) == 1
    (rewound,) = [json.loads(e.data or "{}") for e in harness.store.journal(instance_id) if e.type is Entry.REWOUND]
    assert rewound["request"] == first.item_id  # each answer names the request it answers
    assert harness.control.rewind_outcome(second).refused




def _entry(seq: int, kind: object, data: dict[str, object]) -> JournalEntry:
    return JournalEntry("i", seq, kind, None, None, json.dumps(data), None, 0.0)  # type: ignore[arg-type]


def _request(item_id: int, run: int = 1) -> RewindRequest:
    plan = RewindPlan("i", 2, 2, 3, (), (), run)
    return RewindRequest(plan, item_id)


def test_answer_reads_the_entry_that_names_the_request() -> None:
    refused = Entry.REWIND_REFUSED
    entries = [
        _entry(4, Entry.REWOUND, {"to_step": 1, "run": 2, "archived": 3, "request": 7}),
        _entry(5, refused, {"request": 8, "to_step": 2, "reason": "it is running"}),
        _entry(6, Entry.REWOUND, {"to_step": 2, "run": 3, "archived": 2, "request": 9}),
    ]
    assert answer(entries, _request(7)) == RewindOutcome(RewindState.APPLIED, 1, 2)
    assert answer(entries, _request(8)) == RewindOutcome(RewindState.REFUSED, reason="it is running")
    assert answer(entries, _request(9, run=2)) == RewindOutcome(RewindState.APPLIED, 2, 3)
    # a named entry for run 2 answers request 7, not request 10 planned against run 1
    assert answer(entries, _request(10)) == RewindOutcome(RewindState.REFUSED)


def test_inspect_shows_a_refusal_the_daemon_journaled() -> None:
    entry = _entry(2, Entry.REWIND_REFUSED, {"request": 7, "to_step": 1, "reason": "it is running"})
    (step,) = steps([entry], None)
    assert (step["kind"], step["status"], step["result"]["reason"]) == ("rewind", "refused", "it is running")


def test_answer_without_request_ids_goes_by_the_run_the_rewind_started() -> None:
    entries = [_entry(4, Entry.REWOUND, {"to_step": 2, "run": 2, "archived": 3})]
    assert answer(entries, _request(7, run=1)) == RewindOutcome(RewindState.APPLIED, 2, 2)
    assert answer(entries, _request(7, run=2)) == RewindOutcome(RewindState.REFUSED)
    assert answer([], _request(7)) == RewindOutcome(RewindState.REFUSED)
    bad = [_entry(4, Entry.REWOUND, {}), JournalEntry("i", 5, Entry.REWOUND, None, None, "not json", None, 0.0)]
    assert answer(bad, _request(7)) == RewindOutcome(RewindState.REFUSED)


# -- command line --------------------------------------------------------------------------------

def test_cli_rewind_dry_run_then_rewind_and_inspect_all_runs(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run(advance=2)
    assert run_json(project, "inspect", instance_id)["status"] == "completed"
    before = run_json(project, "inspect", instance_id)

    dry = run_json(project, "rewind", instance_id, "--to-step", 3, "--dry-run")
    assert dry["dry_run"] is True and dry["to_step"] == 3 and dry["archived_run"] == 1
    assert [(e["type"], e["position"]) for e in dry["archived"]] == [
        ("task_scheduled", 3), ("task_completed", 3), ("completed", None)
    ]
    text = invoke("--project", project, "rewind", "ada@example.com", "--to-step", "3", "--dry-run").stdout
    assert "would keep" in text and "task_completed" in text and "dry run: nothing changed" in text
    assert run_json(project, "inspect", instance_id) == before

    reply = run_json(project, "rewind", instance_id, "--to-step", 3)
    assert reply["dry_run"] is False and reply["applied"] is False and reply["status"] == "completed"
    engine.run()
    view = run_json(project, "inspect", instance_id)
    assert view["status"] == "completed" and view["run"] == 2 and "runs" not in view
    assert [s["kind"] for s in view["steps"]] == ["task", "wait", "rewind", "task", "completed"]

    full = run_json(project, "inspect", instance_id, "--all-runs")
    assert [(r["run"], r["current"], r["rewound_to"]) for r in full["runs"]] == [(1, False, 3), (2, True, None)]
    assert [s["kind"] for s in full["runs"][0]["steps"]] == ["task", "wait", "task", "completed"]
    assert full["runs"][1]["steps"] == view["steps"]
    text = invoke("--project", project, "inspect", instance_id, "--all-runs").stdout
    assert "run 1" in text and "rewound to step 3" in text and "run 2, current" in text


def test_cli_rewind_refusals(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    fails(project, "rewind", instance_id, "--to-step", "1", match="pause it first")
    invoke("--project", project, "pause", instance_id)
    engine.run()
    fails(project, "rewind", instance_id, "--to-step", "9", match="no step at position 9")
    result = invoke("--project", project, "rewind", instance_id, code=2)
    assert "--to-step" in result.output


def test_cli_rewind_applied_by_the_daemon(project: Path, daemon: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    daemon.run(advance=2)
    result = invoke("--project", project, "rewind", instance_id, "--to-step", 3)
    assert result.stdout.splitlines()[0].startswith(f"rewind WelcomeFlow {instance_id} to step 3: keeps 5 journal")
    assert result.stdout.splitlines()[-1] == f"rewind: WelcomeFlow {instance_id} is now completed (run 2)"
    assert result.stderr == ""
    reply = run_json(project, "rewind", instance_id, "--to-step", 1)
    assert (reply["applied"], reply["refused"], reply["reason"], reply["status"]) == (True, False, None, "running")
    assert reply["archived_run"] == 2 and len(daemon.store.archive(instance_id)) == 2


def test_cli_rewind_refused_by_the_daemon(project: Path, daemon: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    daemon.run()
    invoke("--project", project, "pause", instance_id)
    control = Control(daemon.store, daemon.project.codec, "dev")
    control.resume(control.get(instance_id))  # the daemon takes it first: then the instance runs
    result = invoke("--project", project, "rewind", instance_id, "--to-step", 1, code=1)
    assert f"rewind WelcomeFlow {instance_id} to step 1: keeps 1 journal entries" in result.stdout
    message = str(result.exception)
    assert message.startswith(f"the daemon refused to rewind WelcomeFlow {instance_id}: ")
    assert message.endswith("; it is running") and "\n" not in message
    assert daemon.store.archive(instance_id) == []

    invoke("--project", project, "pause", instance_id)
    control.resume(control.get(instance_id))
    result = invoke("--project", project, "rewind", instance_id, "--to-step", 1, "--json", code=1)
    reply = json.loads(result.stdout)
    assert (reply["applied"], reply["refused"], reply["status"]) == (False, True, "running")
    assert "it is running" in reply["reason"]


def test_cli_rewind_the_daemon_has_not_taken_yet(
    project: Path, daemon: Engineer, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    daemon.run(advance=2)
    monkeypatch.setattr(control_commands, "ACK_TIMEOUT", 0)
    monkeypatch.setattr(Control, "idle", lambda self, seconds: None)
    result = invoke("--project", project, "rewind", instance_id, "--to-step", 3)
    last = result.stdout.splitlines()[-1]
    assert last == f"rewind requested for WelcomeFlow {instance_id} (the daemon has not applied it yet)"
    assert result.stderr == ""
    daemon.run()
    assert len(daemon.store.archive(instance_id)) == 1


def test_cli_rewind_without_a_daemon_is_queued(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run(advance=2)
    result = invoke("--project", project, "rewind", instance_id, "--to-step", 3)
    assert result.stdout.splitlines()[-1] == f"rewind queued for WelcomeFlow {instance_id}"
    assert result.stderr == "warning: no daemon is running; it applies when `zenaton start` runs\n"
    (item,) = engine.store.inbox(instance_id)
    assert item.kind == "rewind" and json.loads(item.data or "{}")["position"] == 3
    engine.run()
    assert engine.store.inbox(instance_id) == [] and len(engine.store.archive(instance_id)) == 1

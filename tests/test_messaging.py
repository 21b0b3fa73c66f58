"""Calls to other instances from inside a workflow: where_id(...).send_event / pause / resume /
kill / find, and schedule(). Each is a request journaled at its position with its answer, carried
out once, in the commit of the step that decided it, and answered from the journal on replay."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flowlib import messaging
from flowlib.messaging import (
    Caller,
    Chatterbox,
    ChildTalker,
    Knock,
    Mailbox,
    OnEventCaller,
    SelfPauser,
    SelfSender,
    Switchy,
)

from tests.harness import Harness
from zenaton._runtime import current_runtime
from zenaton.exceptions import InstanceStateError, UnknownInstanceError
from zenaton_runtime.client.inspect_views import instance_view
from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import Entry, JournalEntry
from zenaton_runtime.replay import WorkflowRun
from zenaton_runtime.replay.journal import inputs, recorded_requests
from zenaton_runtime.timing import waits

GOLDEN = Path(__file__).parent / "golden"


def knock(h: Harness, instance_id: str, value: Any) -> None:
    """A client's event to an instance."""
    h.control.send_event(h.instance(instance_id), Knock(value))


def answers(h: Harness, instance_id: str) -> list[Any]:
    return h.properties(instance_id)["answers"]


def entries(h: Harness, instance_id: str, type: Entry) -> list[JournalEntry]:
    return [e for e in h.store.journal(instance_id) if e.type is type]


def received(h: Harness, instance_id: str) -> list[Any]:
    return h.properties(instance_id)["received"]


def client_error(h: Harness, call: Any) -> tuple[str, str]:
    """What a plain script gets for the same call."""
    token = current_runtime.set(h.runtime)
    try:
        with pytest.raises((UnknownInstanceError, InstanceStateError)) as raised:
            call()
    finally:
        current_runtime.reset(token)
    return type(raised.value).__name__, str(raised.value)


# -- each call, and its effect on the target ----------------------------------------


def test_send_event_from_a_workflow_reaches_the_target_once(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["send", "box", "hi"], ["send", "box", "stop"]]))
    harness.run()
    assert harness.result(caller) == ["sent", "sent"]
    assert harness.status(box) == "completed" and harness.result(box) == ["hi", "stop"]
    assert harness.store.inbox(box) == []
    sent = entries(harness, caller, Entry.EVENT_SENT)
    assert [(e.position, e.name) for e in sent] == [(1, "Mailbox"), (2, "Mailbox")]
    assert json.loads(sent[0].data) == {"custom_id": "box", "id": box, "event": "Knock", "refused": None}
    assert [e.name for e in entries(harness, box, Entry.EVENT_RECEIVED)] == ["Knock", "Knock"]


def test_pause_resume_and_kill_from_a_workflow(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["pause", "box"], ["wait"], ["resume", "box"], ["wait"], ["kill", "box"]]))
    harness.run()
    assert harness.status(box) == "paused"
    knock(harness, caller, "go")
    harness.run()
    assert harness.status(box) == "running"
    knock(harness, caller, "go again")
    harness.run()
    assert harness.status(box) == "killed"
    assert harness.result(caller) == ["pause", "go", "resume", "go again", "kill"]
    actions = [json.loads(e.data)["action"] for e in entries(harness, caller, Entry.CONTROL_SENT)]
    assert actions == ["pause", "resume", "kill"]
    assert [e.type.value for e in harness.store.journal(box)] == ["started", "wait_started", "paused", "resumed", "killed"]


def test_find_from_a_workflow_returns_the_properties_of_then_even_on_replay(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    knock(harness, box, "a")
    harness.run()
    caller = harness.dispatch(Caller([["find", "box"], ["wait"], ["find", "box"], ["find", "nobody"]]))
    harness.run()
    assert answers(harness, caller) == [["Mailbox", "box", ["a"]]]
    (found,) = entries(harness, caller, Entry.FOUND)
    assert json.loads(found.data) == {
        "custom_id": "box", "id": box, "status": "running", "version": None, "refused": None,
        "properties": {"name": "box", "received": ["a"]},
    }
    knock(harness, box, "b")  # the target changes after the find
    harness.run()
    assert received(harness, box) == ["a", "b"]
    harness.engine.cache.evict(caller)  # the caller is rebuilt by replay at its next step
    knock(harness, caller, "go")
    harness.run()
    assert harness.result(caller) == [["Mailbox", "box", ["a"]], "go", ["Mailbox", "box", ["a", "b"]], None]
    assert len(entries(harness, caller, Entry.FOUND)) == 3


def test_find_of_a_finished_instance_and_before_its_first_step(harness: Harness) -> None:
    done = harness.dispatch(Mailbox("done"))
    harness.run()
    knock(harness, done, "stop")
    harness.run()
    caller = harness.dispatch(Caller([["find", "done"]]))
    harness.run()
    assert harness.result(caller) == [["Mailbox", "done", ["stop"]]]  # the newest, as a client's find()
    assert json.loads(entries(harness, caller, Entry.FOUND)[0].data)["status"] == "completed"
    both = harness.dispatch(Caller([["find", "fresh"]], name="both"))
    fresh = harness.dispatch(Mailbox("fresh"))  # not yet stepped: its object as dispatched
    harness.run()
    assert harness.result(both) == [["Mailbox", "fresh", []]]
    assert harness.status(fresh) == "running"


def test_schedule_from_a_workflow_adds_one_schedule_that_fires(harness: Harness) -> None:
    caller = harness.dispatch(Caller([["schedule", "0 * * * *", 20, 22], ["schedule", "not a cron", 1, 1]]))
    harness.run()
    (schedule,) = harness.store.list_schedules()
    first, refused = harness.result(caller)
    assert first == [schedule.id, "0 * * * *", "Add"]
    assert refused[0] == "InvalidArgumentError" and "not a cron" in refused[1]
    assert (schedule.env, schedule.kind.value, schedule.timezone) == ("dev", "task", "UTC")
    added = entries(harness, caller, Entry.SCHEDULE_ADDED)
    assert [json.loads(e.data)["refused"] is None for e in added] == [True, False]
    harness.clock.set(schedule.next_fire)
    harness.run()
    (task,) = harness.store.list_instances(name="Add")
    assert harness.status(task.id) == "completed"
    assert json.loads(harness.store.journal(task.id)[-1].data)["result"] == 42
    assert harness.store.list_schedules()[0].fires == 1


# -- exactly once --------------------------------------------------------------------


def test_a_commit_that_fails_then_succeeds_sends_once(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["send", "box", "once"], ["pause", "box"], ["schedule", "0 * * * *", 1, 2]]))
    commit_step = harness.store.commit_step
    refused = []

    def refusing(*args: Any, **kwargs: Any) -> Any:  # the write fails after the step decided
        refused.append(args[0])
        raise StoreError("disk I/O error")

    harness.store.commit_step = refusing  # type: ignore[method-assign]
    harness.engine.step()
    harness.engine.step()
    assert len(refused) == 2 and harness.engine.store_failure is not None
    assert any(op.__class__.__name__ == "Post" for op in refused[0].ops)  # it had decided the calls
    assert entries(harness, caller, Entry.EVENT_SENT) == [] and harness.store.inbox(box) == []
    harness.store.commit_step = commit_step  # type: ignore[method-assign]
    harness.engine.step()  # decided again, and committed this time
    harness.engine.settle()
    assert [(item.kind.value, item.name) for item in harness.store.inbox(box)] == [("event", "Knock"), ("pause", None)]
    harness.run()
    (schedule,) = harness.store.list_schedules()
    assert harness.result(caller) == ["sent", "pause", [schedule.id, "0 * * * *", "Add"]]
    assert len(entries(harness, caller, Entry.EVENT_SENT)) == 1
    assert received(harness, box) == ["once"] and harness.status(box) == "paused"
    assert len(entries(harness, box, Entry.PAUSED)) == 1


def test_a_read_only_store_then_writable_again_delivers_once(tmp_path: Path, flow_log: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    h.engine.emit = lambda line: None
    try:
        box = h.dispatch(Mailbox("box"))
        h.run()
        caller = h.dispatch(Caller([["send", "box", "once"]]))
        h.store._conn.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
        for _ in range(3):
            assert h.engine.step() == 0
        assert h.engine.store_failure is not None
        h.store._conn.execute("PRAGMA query_only = OFF")  # type: ignore[attr-defined]
        h.run()
        assert h.result(caller) == ["sent"]
        assert received(h, box) == ["once"]
        assert flow_log.read_text().splitlines().count("Mailbox box got once") == 1
    finally:
        h.close()


PLAN = [
    ["send", "box", "a"], ["echo", "x"], ["find", "box"], ["send", "nobody", "z"], ["pause", "box"],
    ["resume", "box"], ["wait"], ["resume", "box"], ["find", "box"], ["send", "box", "stop"],
]


def _replayed_scenario(h: Harness) -> tuple[str, str]:
    box = h.dispatch(Mailbox("box"))
    h.run()
    caller = h.dispatch(Caller(PLAN))
    h.run()
    knock(h, caller, "go")
    h.run()
    return box, caller


def _signature(h: Harness, instance_id: str, box: str) -> str:
    """The journal without what differs from run to run (task ids, times; the box's id)."""
    out = []
    for e in h.store.journal(instance_id):
        data = e.data
        if e.type in (Entry.TASK_SCHEDULED, Entry.TASK_COMPLETED, Entry.STARTED):
            data = None
        out.append((e.type.value, e.position, e.name, data, e.properties))
    return json.dumps(out).replace(box, "<box>")


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-background", "memory"])
def test_replay_after_eviction_gives_the_same_answers_and_sends_nothing_again(tmp_path: Path, kind: str) -> None:
    def harness_of(name: str, cache_size: int) -> Harness:
        url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path}/{name}.db"
        return Harness(url, cache_size=cache_size, background_commits=kind == "sqlite-background")

    sticky_h, replayed = harness_of("sticky", 1000), harness_of("replayed", 0)  # 0: every step replays
    try:
        sticky_box, sticky = _replayed_scenario(sticky_h)
        box, caller = _replayed_scenario(replayed)
        assert len(replayed.engine.cache) == 0
        assert json.dumps(replayed.result(caller)).replace(box, "<box>") == json.dumps(
            sticky_h.result(sticky)
        ).replace(sticky_box, "<box>")
        assert _signature(replayed, caller, box) == _signature(sticky_h, sticky, sticky_box)
        for h, target in ((sticky_h, sticky_box), (replayed, box)):
            assert h.status(target) == "completed" and h.result(target) == ["a", "stop"]  # each sent once
            assert len(entries(h, target, Entry.PAUSED)) == 1 and len(entries(h, target, Entry.RESUMED)) == 1
        result = sticky_h.result(sticky)
    finally:
        sticky_h.close()
        replayed.close()
    assert result[3][0] == "UnknownInstanceError" and result[5][0] == "InstanceStateError"  # resume before pause applied
    assert result[7] == "resume" and result[8] == ["Mailbox", "box", ["a"]]


# -- refusals ----------------------------------------------------------------------


def test_an_event_to_an_instance_finished_meanwhile_is_refused_as_for_a_client(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["wait"], ["send", "box", "late"], ["kill", "box"], ["wait"]]))
    harness.run()
    knock(harness, box, "stop")  # the target finishes while the caller waits
    harness.run()
    assert harness.status(box) == "completed"
    knock(harness, caller, "go")
    harness.run()
    send_refusal, kill_refusal = answers(harness, caller)[1:3]
    assert tuple(send_refusal) == client_error(harness, lambda: Mailbox.where_id("box").send_event(Knock("late")))
    assert tuple(kill_refusal) == client_error(harness, lambda: Mailbox.where_id("box").kill())
    assert send_refusal[0] == "UnknownInstanceError"
    sent = entries(harness, caller, Entry.EVENT_SENT)
    assert json.loads(sent[0].data)["refused"] == {"class": send_refusal[0], "message": send_refusal[1]}
    again = harness.dispatch(Mailbox("box"))  # an instance with that id exists now: replay must not care
    harness.run()
    harness.engine.cache.evict(caller)
    knock(harness, caller, "end")
    harness.run()
    assert harness.result(caller) == ["go", send_refusal, kill_refusal, "end"]  # raised again, from the journal
    assert len(entries(harness, caller, Entry.EVENT_SENT)) == 1
    assert harness.status(again) == "running" and received(harness, again) == []
    assert harness.result(box) == ["stop"]


def test_a_refusal_not_caught_pauses_the_workflow_with_the_clients_error(harness: Harness) -> None:
    caller = harness.dispatch(SelfSender("lonely"))  # sends to itself: found
    switchy = harness.dispatch(Switchy())  # sends to "switch-target": there is none
    harness.run()
    assert harness.result(caller) == ["to myself", ["to myself"]]
    assert harness.status(switchy) == "paused"
    error = harness.error(switchy)
    assert error["class"] == "UnknownInstanceError"
    assert error["message"] == "no running or paused Mailbox instance with id 'switch-target' in env 'dev'"


# -- non-determinism -----------------------------------------------------------------


def test_a_different_call_at_a_position_is_a_non_determinism_error(harness: Harness) -> None:
    target = harness.dispatch(Mailbox("switch-target"))
    harness.run()
    instance_id = harness.dispatch(Switchy())
    harness.run()
    try:
        messaging.MODE["call"] = "pause"  # the code changed while the instance waited
        harness.engine.cache.evict(instance_id)
        knock(harness, instance_id, "go")
        harness.run()
        assert harness.status(instance_id) == "paused"
        error = harness.error(instance_id)
        assert error["class"] == "NonDeterminismError" and error["position"] == 1
        assert "send_event Mailbox" in error["message"] and "pause Mailbox" in error["message"]
        assert harness.status(target) == "running"  # nothing was sent for the changed call
    finally:
        messaging.MODE["call"] = "send"
    harness.control.retry(harness.instance(instance_id))
    harness.run()
    assert harness.result(instance_id) == "go"
    assert received(harness, target) == ["switch"]


# -- itself, its children, on_event ------------------------------------------------------


def test_sending_to_itself_is_delivered_once_at_its_next_step(harness: Harness) -> None:
    instance_id = harness.dispatch(SelfSender("me"))
    harness.run()
    assert harness.result(instance_id) == ["to myself", ["to myself"]]
    assert len(entries(harness, instance_id, Entry.EVENT_SENT)) == 1
    assert len(entries(harness, instance_id, Entry.EVENT_RECEIVED)) == 1


def test_pausing_itself_takes_effect_at_its_next_step_and_resumes_without_pausing_again(harness: Harness) -> None:
    instance_id = harness.dispatch(SelfPauser("me"))
    harness.run()
    assert harness.status(instance_id) == "paused"
    harness.control.resume(harness.instance(instance_id))
    harness.run()
    refused, after = harness.result(instance_id)
    assert refused == f"cannot resume SelfPauser {instance_id}: it is running"
    assert after == "after pause"
    assert len(entries(harness, instance_id, Entry.CONTROL_SENT)) == 2  # the replay after resume sent nothing
    assert len(entries(harness, instance_id, Entry.PAUSED)) == 1


def test_a_child_dispatched_in_the_same_decision_is_found_and_a_child_can_knock_on_its_parent(harness: Harness) -> None:
    parent = harness.dispatch(ChildTalker("talk"))
    harness.run()
    assert harness.result(parent) == ["hello parent"]  # sent by the child it executes, while it waited
    (child,) = harness.store.list_instances(name="Mailbox")
    assert harness.result(child.id) == ["hello child", "stop"]
    targets = [json.loads(e.data)["id"] for e in entries(harness, parent, Entry.EVENT_SENT)]
    assert targets == [child.id, child.id]


def test_on_event_cannot_call_other_instances(harness: Harness) -> None:
    instance_id = harness.dispatch(OnEventCaller())
    harness.run()
    knock(harness, instance_id, "go")
    harness.run()
    value, refusal = harness.result(instance_id)
    assert value == "go"
    assert refusal == ["ExternalError", "on_event() cannot call where_id().find(): call it from handle()"]


def test_calls_in_an_endless_loop_are_stopped_by_the_decision_time_limit(harness: Harness) -> None:
    harness.engine.decision_timeout = 0.3
    instance_id = harness.dispatch(Chatterbox())
    harness.run()
    assert harness.status(instance_id) == "paused"
    assert harness.error(instance_id)["class"] == "DecisionTimeout"
    assert len(entries(harness, instance_id, Entry.FOUND)) > 10  # each answered, and journaled


def test_a_rewind_to_a_call_makes_it_again(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["echo", 1], ["send", "box", "again"]]))
    harness.run()
    harness.control.rewind(harness.instance(caller), 2)
    harness.run()
    assert received(harness, box) == ["again", "again"]
    assert harness.result(caller) == [1, "sent"]


# -- inspect ---------------------------------------------------------------------------


def test_inspect_shows_each_call_as_a_step_with_its_target_and_answer(harness: Harness) -> None:
    box = harness.dispatch(Mailbox("box"))
    harness.run()
    plan = [["send", "box", "hi"], ["pause", "box"], ["find", "box"], ["kill", "nobody"], ["schedule", "0 8 * * *", 1, 2]]
    caller = harness.dispatch(Caller(plan))
    harness.run()
    view = instance_view(harness.instance(caller), harness.store.journal(caller))
    steps = {s["position"]: s for s in view["steps"] if s["position"] is not None}
    assert [steps[p]["kind"] for p in range(1, 6)] == ["send_event", "control", "find", "control", "schedule"]
    assert steps[1]["target"] == {"name": "Mailbox", "custom_id": "box", "id": box}
    assert (steps[1]["status"], steps[1]["result"], steps[1]["error"]) == ("completed", {"event": "Knock"}, None)
    assert steps[2]["result"] == {"action": "pause"}
    # read in the step that sent the event: the box has not received it yet
    assert steps[3]["result"] == {"status": "running", "properties": {"name": "box", "received": []}}
    assert steps[4]["status"] == "refused" and steps[4]["target"]["id"] is None
    assert steps[4]["error"]["class"] == "UnknownInstanceError" and steps[4]["result"] == {"action": "kill"}
    schedule = harness.store.list_schedules()[0]
    assert steps[5]["target"] is None and steps[5]["result"]["id"] == schedule.id
    assert steps[5]["result"]["cron"] == "0 8 * * *" and steps[5]["result"]["next_fire"].endswith("Z")
    assert all(s["target"] is None for s in view["steps"] if s["kind"] in ("task", "completed"))


def test_the_timeline_table_names_each_calls_target(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    from zenaton_cli import render

    box = harness.dispatch(Mailbox("box"))
    harness.run()
    caller = harness.dispatch(Caller([["send", "box", "hi"], ["find", "nobody"], ["resume", "box"]]))
    harness.run()
    view = instance_view(harness.instance(caller), harness.store.journal(caller))
    render.timeline_table(view["steps"])
    lines = capsys.readouterr().out.splitlines()
    (sent,) = [line for line in lines if "send_event" in line]
    assert "Mailbox (box)" in sent and f"Knock → {box[:8]}" in sent
    (found,) = [line for line in lines if " find " in line]
    assert "Mailbox (nobody)" in found and "none" in found
    (resume,) = [line for line in lines if " control " in line]
    assert "refused" in resume and "InstanceStateError: cannot resume Mailbox" in resume
    render.instance_detail(view, step=1)  # inspect --step 1: the call in full
    detail = capsys.readouterr().out
    assert "call" in detail and f'"id": "{box}"' in detail and '"event": "Knock"' in detail


# -- the journal's format ----------------------------------------------------------------


def test_golden_journal_of_calls_replays_to_the_same_answers(sqlite_harness: Harness) -> None:
    """A journal recorded with every kind of call: the pure core replays it, deciding nothing new."""
    spec = json.loads((GOLDEN / "calls.json").read_text())
    journal = [
        JournalEntry("golden", i + 1, Entry(e["type"]), e["position"], e["name"], e["data"], None, 0.0)
        for i, e in enumerate(spec["journal"])
    ]
    codec = sqlite_harness.project.codec
    run = WorkflowRun(codec.decode(spec["workflow"]), "golden", recorded_requests(journal), waits.fire_at)
    decisions = run.start(0.0)
    for item in inputs(journal):
        if item.kind == "event":
            decisions += run.deliver_event(codec.decode(item.value), 0.0)
        else:
            decisions += run.deliver_result(item.position, codec.decode(item.value), 0.0)
    assert [d.kind for d in decisions] == ["complete"]
    assert decisions[0].result == spec["result"]

"""Sticky runs and replay give the same journals; changed code is caught by position."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flowlib import workflows
from flowlib.tasks import FLAGS, Ping

from zenaton_runtime.timing import waits
from zenaton_runtime.models import Entry, JournalEntry
from zenaton_runtime.replay import NonDeterminismError, WorkflowRun
from zenaton_runtime.replay.journal import inputs, recorded_requests
from tests.harness import Harness

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = {"task_id", "id", "started_at", "finished_at"}  # ids drawn at random, attempt times read from the clock


def scenario(h: Harness, name: str) -> list[str]:
    """Run one named scenario; return the ids of the instances it created."""
    if name == "sequential":
        ids = [h.dispatch(workflows.Sequential(7))]
        h.run()
    elif name == "parallel":
        ids = [h.dispatch(workflows.Fanout(3))]
        h.run()
    elif name == "events":
        ids = [h.dispatch(workflows.EventFlow("g"))]
        h.runtime.send_event(workflows.EventFlow, "g", Ping("early"))
        h.run()
        h.runtime.send_event(workflows.EventFlow, "g", Ping("late"))
        h.run()
    elif name == "waits":
        ids = [h.dispatch(workflows.WaitWithTimeout("t")), h.dispatch(workflows.Sleeper(1))]
        h.run()
        h.advance(5)
        h.advance(86_400)
    elif name == "children":
        ids = [h.dispatch(workflows.Parent()), h.dispatch(workflows.FireAndForget())]
        h.run()
    elif name == "retry":
        ids = [h.dispatch(workflows.RetryFlow(2))]
        h.run()
        h.advance(5)
        h.advance(10)
    elif name == "pause":
        ids = [h.dispatch(workflows.Long(6))]
        h.engine.step()
        h.control.pause(h.instance(ids[0]))
        h.run()
        h.control.resume(h.instance(ids[0]))
        h.run()
    elif name == "error":
        FLAGS["fail_always"] = True
        try:
            ids = [h.dispatch(workflows.FragileFlow())]
            h.run()
        finally:
            FLAGS["fail_always"] = False
        h.control.retry(h.instance(ids[0]))
        h.run()
    else:  # pragma: no cover
        raise ValueError(name)
    return ids


def signature(h: Harness, instance_id: str) -> list[tuple]:
    rows = []
    for entry in h.store.journal(instance_id):
        data = entry.data
        if data and entry.type is not Entry.STARTED:
            parsed = json.loads(data)
            if isinstance(parsed, dict):
                data = json.dumps({k: v for k, v in parsed.items() if k not in VOLATILE}, sort_keys=True)
        rows.append((entry.type.value, entry.position, entry.name, data, entry.properties))
    return rows


SCENARIOS = ["sequential", "parallel", "events", "waits", "children", "retry", "pause", "error"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_sticky_and_replay_paths_write_identical_journals(tmp_path, name):
    sticky = Harness(f"sqlite:///{tmp_path}/sticky.db")
    replay = Harness(f"sqlite:///{tmp_path}/replay.db", cache_size=0)
    try:
        sticky_ids = scenario(sticky, name)
        replay_ids = scenario(replay, name)
        assert len(replay.engine.cache) == 0
        for a, b in zip(sticky_ids, replay_ids):
            assert sticky.status(a) == replay.status(b) == "completed"
            assert signature(sticky, a) == signature(replay, b)
    finally:
        sticky.close()
        replay.close()


def test_changed_code_pauses_with_position_and_both_classes(harness):
    workflows.Changing.first = "Add"
    instance_id = harness.dispatch(workflows.Changing())
    harness.run()
    try:
        workflows.Changing.first = "Echo"  # the code changed while the instance waited
        harness.engine.cache.evict(instance_id)  # as after a daemon restart
        harness.control.send_event(harness.instance(instance_id), Ping("go"))
        harness.run()
        assert harness.status(instance_id) == "paused"
        error = harness.error(instance_id)
        assert error["class"] == "NonDeterminismError"
        assert error["position"] == 1
        assert "instance " + instance_id in error["message"]
        assert "task Add" in error["message"] and "task Echo" in error["message"]
    finally:
        workflows.Changing.first = "Add"
    harness.control.retry(harness.instance(instance_id))  # the code is fixed: replay goes through
    harness.run()
    assert harness.result(instance_id) == "go"


# -- golden journals: recorded histories replayed by the pure core --------------

def load_golden(name: str) -> tuple[dict, list[JournalEntry]]:
    spec = json.loads((GOLDEN / f"{name}.json").read_text())
    entries = [
        JournalEntry("golden", i + 1, Entry(e["type"]), e["position"], e["name"], e["data"], None, 0.0)
        for i, e in enumerate(spec["journal"])
    ]
    return spec, entries


def replay_golden(h: Harness, spec: dict, entries: list[JournalEntry]) -> list:
    workflow = h.project.codec.decode(spec["workflow"])
    run = WorkflowRun(workflow, "golden", recorded_requests(entries), waits.fire_at)
    decisions = run.start(0.0)
    for item in inputs(entries):
        if item.kind == "result":
            decisions += run.deliver_result(item.position, h.project.codec.decode(item.value), 0.0)
        elif item.kind == "timer":
            decisions += run.deliver_timer(item.position, 0.0)
        else:
            decisions += run.deliver_event(h.project.codec.decode(item.value), 0.0)
    return decisions


@pytest.mark.parametrize("name", ["sequential", "events", "parallel"])
def test_golden_journal_replays_to_the_same_result(sqlite_harness, name):
    spec, entries = load_golden(name)
    decisions = replay_golden(sqlite_harness, spec, entries)
    assert [d.kind for d in decisions] == ["complete"]
    assert decisions[0].result == spec["result"]


def test_golden_journal_with_changed_code_is_reported(sqlite_harness):
    spec, entries = load_golden("sequential")
    spec["workflow"] = spec["workflow"].replace("Sequential", "Branching")
    decisions = replay_golden(sqlite_harness, spec, entries)
    assert [d.kind for d in decisions] == ["fail"]
    assert isinstance(decisions[0].error, NonDeterminismError)
    assert decisions[0].error.position == 2


def test_record_golden_journals(tmp_path):
    """Re-record with ZENATON_RECORD_GOLDEN=1 after an intended change of format."""
    if not os.environ.get("ZENATON_RECORD_GOLDEN"):
        for name in ("sequential", "events", "parallel"):
            assert (GOLDEN / f"{name}.json").is_file()
        return
    h = Harness(f"sqlite:///{tmp_path}/golden.db")
    for name in ("sequential", "events", "parallel"):
        (instance_id,) = scenario(h, name)
        journal = h.store.journal(instance_id)
        spec = {
            "workflow": h.instance(instance_id).data,
            "result": h.result(instance_id),
            "journal": [
                {"type": e.type.value, "position": e.position, "name": e.name, "data": e.data} for e in journal
            ],
        }
        (GOLDEN / f"{name}.json").write_text(json.dumps(spec, indent=1) + "\n")
    h.close()

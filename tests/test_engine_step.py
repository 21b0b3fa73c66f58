"""The engine step's own guarantees, beyond what the workflow scenarios show."""

from __future__ import annotations

import gc
import json
import sqlite3
from pathlib import Path

from flowlib.tasks import Ping
from flowlib.workflows import EventFlow, Sequential

from tests.harness import Harness
from zenaton_runtime.engine.context import StepContext
from zenaton_runtime.engine.workflow_activation import WorkflowActivation
from zenaton_runtime.models import Entry, InboxKind
from zenaton_runtime.store.sqlite_writer import CANCEL_LIVE_TASKS


def test_an_inbox_item_of_a_kind_this_engine_does_not_know_is_consumed_and_logged(tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/z.db")
    lines: list[str] = []
    h.engine.emit = lines.append
    instance_id = h.dispatch(EventFlow("u"))
    h.run()
    with sqlite3.connect(tmp_path / "z.db") as db:  # as a newer engine would have written it
        db.execute(
            "INSERT INTO inbox (instance_id, kind, name, data, created_at) VALUES (?, 'frobnicate', 'nm', '{}', 0)",
            (instance_id,),
        )
        db.execute("UPDATE instances SET ready = 1 WHERE id = ?", (instance_id,))
    h.run()
    assert h.store.inbox(instance_id) == []
    assert h.status(instance_id) == "running"
    assert any(line.endswith("frobnicate nm ignored (instance is running)") for line in lines)
    h.close()


def test_no_activation_or_step_context_outlives_its_step(tmp_path: Path, flow_log: Path) -> None:
    """Each step's objects are freed by reference counting alone: nothing of a step waits for
    the cyclic garbage collector (which would add work to every step of a busy daemon)."""
    h = Harness(f"sqlite:///{tmp_path}/z.db")
    gc.collect()
    gc.disable()
    try:
        for n in range(3):
            h.dispatch(Sequential(n))
        h.run()
        alive = [o for o in gc.get_objects() if isinstance(o, (StepContext, WorkflowActivation))]
    finally:
        gc.enable()
    assert alive == []
    assert all(h.status(i.id) == "completed" for i in h.store.list_instances())
    h.close()


def test_a_kill_cancels_tasks_through_the_index_of_open_tasks(tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/z.db")
    with sqlite3.connect(tmp_path / "z.db") as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {CANCEL_LIVE_TASKS}", ("x",)))
    assert "tasks_open_by_instance" in plan and "SCAN" not in plan
    h.close()


def test_an_activation_that_fails_unexpectedly_pauses_keeps_its_inputs_and_answers_a_rewind(
    tmp_path: Path, flow_log: Path
) -> None:
    """A rewind item the engine cannot read (no position) breaks the activation itself: the
    instance is paused with the error, an event that came with it is still journaled, and the
    rewind request is answered with a refusal naming the error."""
    h = Harness(f"sqlite:///{tmp_path}/z.db")
    instance_id = h.dispatch(EventFlow("c"))
    h.run()
    h.control.pause(h.instance(instance_id))
    h.run()
    h.store.post(instance_id, InboxKind.EVENT, "Ping", h.project.codec.encode(Ping("kept"), "Ping"))
    item_id = h.store.post(instance_id, InboxKind.REWIND, None, "{}")
    h.run()
    assert h.status(instance_id) == "paused" and h.store.inbox(instance_id) == []
    error = h.error(instance_id)
    assert error is not None and error["class"] == "KeyError"
    journal = h.store.journal(instance_id)
    assert [e.type for e in journal[-3:]] == [Entry.ERROR, Entry.EVENT_RECEIVED, Entry.REWIND_REFUSED]
    refused = json.loads(journal[-1].data or "")
    assert refused["request"] == item_id and refused["reason"].startswith("internal error while deciding: KeyError")
    h.close()

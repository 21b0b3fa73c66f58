"""A task's properties (as sent to the worker, and as its handle() left them) and each attempt's
times: in the journal, in the views `inspect --json` prints, and in the CLI's text."""
from __future__ import annotations

import io
import json
import textwrap
import time
from pathlib import Path

import pytest
from flowlib.props import RetriedTallyFlow, Tally, TallyFlow
from flowlib.tasks import FLAGS
from flowlib.workflows import FragileFlow, Sequential
from rich.console import Console

from tests.cli_helpers import Engineer, dispatch, invoke, run_json
from tests.harness import Harness
from tests.store_helpers import apply
from zenaton_cli import render
from zenaton_runtime.client.inspect_views import instance_view
from zenaton_runtime.models import Entry
from zenaton_runtime.pool.attempts import Attempt, run_attempt
from zenaton_runtime.pool.worker_pool import WorkerPool
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import Batch, NewEntry

TASK_FIELDS = ("task_properties", "task_properties_changed", "attempt_times")


def entries(h: Harness, instance_id: str, type: Entry) -> dict[int | None, dict]:
    return {e.position: json.loads(e.data) for e in h.store.journal(instance_id) if e.type is type}


def view(h: Harness, instance_id: str) -> dict:
    return instance_view(h.instance(instance_id), h.store.journal(instance_id))


def printed(monkeypatch: pytest.MonkeyPatch, view: dict, step: int | None = None) -> str:
    console = Console(file=io.StringIO(), width=200, soft_wrap=True, color_system=None)
    monkeypatch.setattr(render, "out", console)
    render.instance_detail(view, step)
    return console.file.getvalue()  # type: ignore[attr-defined]


def check_times(times: list[dict]) -> None:
    for item in times:
        assert item["started_at"] is not None and item["started_at"] <= item["finished_at"], item


# -- the journal -----------------------------------------------------------------------------

def test_the_journal_keeps_each_task_as_sent_and_as_its_handle_left_it(sqlite_harness: Harness) -> None:
    h, codec = sqlite_harness, sqlite_harness.project.codec
    instance_id = h.dispatch(TallyFlow("t"))
    h.run()
    assert h.result(instance_id) == ["t:2", "t", "p:11", "q"]
    scheduled = entries(h, instance_id, Entry.TASK_SCHEDULED)
    done = entries(h, instance_id, Entry.TASK_COMPLETED)
    sent = codec.decode(json.dumps(scheduled[1]["task"]))
    assert isinstance(sent, Tally) and (sent.label, sent.count) == ("t", 1)
    assert codec.decode(json.dumps(scheduled[4]["task"])).label == "q"  # a Parallel's tasks too
    left = codec.decode(json.dumps(done[1]["task"]))
    assert isinstance(left, Tally) and (left.label, left.count) == ("t", 2)
    assert codec.decode(json.dumps(done[3]["task"])).count == 11
    assert "task" not in done[2] and "task" not in done[4]  # handle() changed nothing: nothing sent back
    for data in done.values():
        assert isinstance(data["started_at"], float) and data["started_at"] <= data["finished_at"]


def test_a_failed_attempt_journals_its_times_and_the_task_as_handle_left_it(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(RetriedTallyFlow())
    h.run()
    (failed,) = entries(h, instance_id, Entry.TASK_FAILED).values()
    assert failed["retry_in"] == 5 and failed["error"]["class"] == "ConnectionError"
    assert failed["started_at"] <= failed["finished_at"]
    assert h.project.codec.decode(json.dumps(failed["task"])).seen == 0


# -- the views -------------------------------------------------------------------------------

def test_inspect_shows_each_task_step_its_properties_what_handle_changed_and_attempt_times(
    sqlite_harness: Harness,
) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(TallyFlow("t"))
    h.run()
    steps = view(h, instance_id)["steps"]
    assert [(s["position"], s["kind"]) for s in steps] == [
        (1, "task"), (2, "task"), (3, "parallel"), (4, "parallel"), (None, "completed")
    ]
    first, steady, tally, quiet, done = steps
    assert first["task_properties"] == {"label": "t", "count": 1}
    assert first["task_properties_changed"] == {"count": {"from": 1, "to": 2}}
    assert steady["task_properties"] == {"label": "t", "tags": ["x"]} and steady["task_properties_changed"] == {}
    assert tally["task_properties_changed"] == {"count": {"from": 10, "to": 11}}
    assert quiet["task_properties"] == {"label": "q", "tags": []} and quiet["task_properties_changed"] == {}
    for step in steps[:4]:
        (attempt,) = step["attempt_times"]
        assert (attempt["attempt"], attempt["outcome"]) == (1, "completed")
        check_times(step["attempt_times"])
    assert [done[field] for field in TASK_FIELDS] == [None, None, None]
    assert first["result"] == "t:2" and first["changed"] == {"results": {"from": [], "to": ["t:2"]}}  # as before


def test_a_standalone_task_shows_its_own_properties(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(Tally("solo", 5))
    h.run()
    (step,) = view(h, instance_id)["steps"]
    assert (step["position"], step["kind"], step["result"]) == (0, "task", "solo:6")
    assert step["task_properties"] == {"label": "solo", "count": 5}
    assert step["task_properties_changed"] == {"count": {"from": 5, "to": 6}}
    assert [a["outcome"] for a in step["attempt_times"]] == ["completed"]
    check_times(step["attempt_times"])


def test_a_retried_task_has_one_attempt_time_per_attempt(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(RetriedTallyFlow())
    h.run()
    (step, *_) = view(h, instance_id)["steps"]
    assert (step["status"], [a["outcome"] for a in step["attempt_times"]]) == ("retrying", ["retrying"])
    assert step["task_properties_changed"] == {"seen": {"from": None, "to": 0}}
    h.advance(5)
    assert h.result(instance_id) == 1
    step, _ = view(h, instance_id)["steps"]
    assert step["attempts"] == 2
    assert [(a["attempt"], a["outcome"]) for a in step["attempt_times"]] == [(1, "retrying"), (2, "completed")]
    check_times(step["attempt_times"])
    assert step["attempt_times"][0]["finished_at"] <= step["attempt_times"][1]["started_at"]
    assert step["task_properties"] == {"label": "r", "seen": None}
    assert step["task_properties_changed"] == {"seen": {"from": None, "to": 1}}  # the last attempt's


def test_a_task_that_failed_for_good_then_was_retried_by_hand(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    FLAGS["fail_always"] = True
    try:
        instance_id = h.dispatch(FragileFlow())
        h.run()
    finally:
        FLAGS["fail_always"] = False
    h.control.retry(h.instance(instance_id))
    h.run()
    step = view(h, instance_id)["steps"][0]
    assert [(a["attempt"], a["outcome"]) for a in step["attempt_times"]] == [(1, "failed"), (2, "completed")]
    assert step["task_properties"] == {} and step["task_properties_changed"] == {}  # Fragile has no attributes


def test_an_old_journal_without_task_properties_or_times_still_shows(
    sqlite_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(Sequential(7))
    batch = Batch()  # entries as the engine wrote them before it kept task properties and attempt times
    batch.append(NewEntry(instance_id, Entry.TASK_SCHEDULED, 1, "Add", json.dumps({"task_id": "old", "group": None})))
    batch.append(NewEntry(instance_id, Entry.TASK_FAILED, 1, "Add", json.dumps(
        {"attempt": 1, "stdout": "", "stderr": "", "error": {"class": "ValueError", "message": "x"}, "retry_in": 5}
    )))
    batch.append(NewEntry(instance_id, Entry.TASK_COMPLETED, 1, "Add", '{"attempt": 2, "stdout": "", "stderr": "", "result": 8}'))
    apply(h.store, batch)
    shown = view(h, instance_id)
    step = shown["steps"][0]
    assert (step["status"], step["result"], step["task_properties"], step["task_properties_changed"]) == (
        "completed", 8, None, {}
    )
    assert step["attempt_times"] == [
        {"attempt": 1, "started_at": None, "finished_at": None, "outcome": "retrying"},
        {"attempt": 2, "started_at": None, "finished_at": None, "outcome": "completed"},
    ]
    assert "Add" in printed(monkeypatch, shown)
    text = printed(monkeypatch, shown, step=1)
    assert "task properties" in text and "attempt 2  completed  started -  finished -" in text


def test_the_timeline_shows_task_properties_and_step_shows_them_in_full(
    sqlite_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = sqlite_harness
    instance_id = h.dispatch(TallyFlow("t"))
    h.run()
    shown = view(h, instance_id)
    table = printed(monkeypatch, shown)
    header = next(line for line in table.splitlines() if line.lstrip().startswith("pos"))
    assert header.split() == [
        "pos", "kind", "name", "task", "status", "tries", "started", "duration", "result", "/", "error", "changed"
    ]
    assert "label=t, count=1→2" in table and 'label=t, tags=["x"]' in table and "label=p, count=10→11" in table
    text = printed(monkeypatch, shown, step=1)
    assert "task properties (as sent to the worker)" in text and "changed by handle()" in text
    assert '"count": {\n    "from": 1,\n    "to": 2\n  }' in text
    assert "attempt 1  completed" in text


# -- the worker ------------------------------------------------------------------------------

WORKER_TASKS = """
from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class Counter(Task, Zenatonable):
    def __init__(self, n):
        self.n = n

    def handle(self):
        self.n += 1
        if self.n > 100:
            raise ValueError("too many")
        return self.n


class Reader(Task, Zenatonable):
    def __init__(self, n):
        self.n = n

    def handle(self):
        return self.n


class KeepsAHandle(Task, Zenatonable):
    def handle(self):
        self.callback = lambda: 1  # cannot be stored: the attempt still succeeds
        return "kept"
"""


def test_a_worker_sends_the_task_back_only_when_its_handle_changed_it(tmp_path: Path) -> None:
    (tmp_path / "worker_props_tasks.py").write_text(textwrap.dedent(WORKER_TASKS))
    (tmp_path / "boot.py").write_text("import worker_props_tasks  # noqa: F401\n")
    project = load_project(tmp_path)
    codec = project.codec

    def attempt(task_id: str, name: str, *args: object) -> Attempt:
        task = project.task(name)(*args)
        return Attempt(task_id, "i1", "test", name, codec.encode(task, "task"), 0, None)

    attempts = [attempt("c", "Counter", 1), attempt("f", "Counter", 100), attempt("r", "Reader", 1),
                attempt("k", "KeepsAHandle")]
    inline = {a.task_id: run_attempt(project, a) for a in attempts}
    with WorkerPool(project, root=tmp_path, store_url="memory://", concurrency=1) as pool:
        pool.submit_many(attempts)
        pooled = {}
        deadline = time.monotonic() + 15
        while len(pooled) < len(attempts) and time.monotonic() < deadline:
            pooled.update({o.task_id: o for o in pool.poll(1.0)})
    for outcomes in (inline, pooled):
        assert codec.decode(outcomes["c"].changed_task).n == 2 and outcomes["c"].ok
        assert codec.decode(outcomes["f"].changed_task).n == 101 and not outcomes["f"].ok  # a failed one too
        assert outcomes["r"].changed_task is None and outcomes["r"].ok
        assert outcomes["k"].changed_task is None and outcomes["k"].ok
        for outcome in outcomes.values():
            assert outcome.started_at <= outcome.finished_at


# -- the command line ------------------------------------------------------------------------

TALLY_TASK = """
from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class Tally(Task, Zenatonable):
    def __init__(self, label, count=0):
        self.label = label
        self.count = count

    def handle(self):
        self.count += 1
        return self.count
"""
TALLY_FLOW = """
from zenaton.abstracts.workflow import Workflow
from zenaton.traits.zenatonable import Zenatonable

from tasks.tally import Tally


class TallyFlow(Workflow, Zenatonable):
    def __init__(self, label):
        self.label = label

    def handle(self):
        return Tally(self.label, 41).execute()
"""


def test_inspect_json_table_and_step_show_task_properties(project: Path) -> None:
    (project / "tasks" / "tally.py").write_text(TALLY_TASK)
    (project / "workflows" / "tally_flow.py").write_text(TALLY_FLOW)
    with (project / "boot.py").open("a") as boot:
        boot.write("from tasks.tally import Tally  # noqa: F401\nfrom workflows.tally_flow import TallyFlow  # noqa: F401\n")
    engine = Engineer(project)
    try:
        instance_id = dispatch(project, "TallyFlow", '"ada"')
        task_id = dispatch(project, "Tally", '"solo"', "1")
        engine.run()
    finally:
        engine.close()
    shown = run_json(project, "inspect", instance_id)
    step, done = shown["steps"]
    assert step["task_properties"] == {"label": "ada", "count": 41}
    assert step["task_properties_changed"] == {"count": {"from": 41, "to": 42}}
    ((attempt),) = step["attempt_times"]
    assert attempt["outcome"] == "completed" and attempt["started_at"] <= attempt["finished_at"]
    assert all(done[field] is None for field in TASK_FIELDS)
    (solo,) = run_json(project, "inspect", task_id)["steps"]
    assert (solo["task_properties"], solo["task_properties_changed"]) == (
        {"label": "solo", "count": 1}, {"count": {"from": 1, "to": 2}}
    )
    assert run_json(project, "inspect", instance_id, "--step", "1")["steps"][0]["task_properties"]["count"] == 41
    table = invoke("--project", project, "inspect", instance_id).stdout
    assert "label=ada, count=41→42" in table
    text = invoke("--project", project, "inspect", instance_id, "--step", "1").stdout
    assert "task properties (as sent to the worker)" in text and '"label": "ada"' in text
    assert "changed by handle()" in text and "attempt 1  completed" in text
    assert "label=solo, count=1→2" in invoke("--project", project, "inspect", task_id).stdout

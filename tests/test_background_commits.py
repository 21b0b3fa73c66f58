"""A step committing in the background while the engine goes on (what the daemon does).

Commits here land only when the engine waits for them (``LateCommits``, a slow disk), and
attempt outcomes reach the engine only when the test releases them (``HeldRunner``), so each
case is played in one order: a result for an instance whose commit is in flight, a child's
custom id taken by a commit in flight, a commit that fails, writes and closing meanwhile.
"""
from __future__ import annotations

import math
from collections.abc import Callable
import sqlite3
import threading

import pytest
from flowlib.extra import AddThenStartsCustomId, ContextFlow, CustomId  # type: ignore[import-not-found]
from flowlib.workflows import Fanout, Parent, Sequential  # type: ignore[import-not-found]

from zenaton_runtime.client.rewind_request import request_rewind
from zenaton_runtime.store import open_store
from zenaton_runtime.store.commit_thread import CommitThread
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.pool.inline import InlineRunner

from .harness import Harness


class LateCommits(CommitThread):
    """COMMIT only once the engine waits for it; ``failures`` commits fail (rolled back) first."""

    failures = 0

    def __init__(self) -> None:
        super().__init__()
        self._gate = threading.Semaphore(0)
        self.started = 0

    def start(self, write: Callable[..., object], conn: sqlite3.Connection) -> None:  # type: ignore[override]
        self.started += 1
        if LateCommits.failures:
            LateCommits.failures -= 1
            conn = _FailingCommit(conn)  # type: ignore[assignment]
        super().start(self._gated, write, conn)

    def _gated(self, write: Callable[..., object], conn: sqlite3.Connection) -> object:
        self._gate.acquire()
        return write(conn)

    def wait(self) -> tuple[object, Exception | None]:
        self._gate.release()
        return super().wait()


class _FailingCommit:
    """A COMMIT the disk refused: SQLite rolls the transaction back and reports an I/O error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str) -> object:
        assert sql == "COMMIT"
        self.conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")


class HeldRunner(InlineRunner):
    """Runs each attempt when it is submitted; the engine sees its outcome once released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._released: list[Outcome] = []
        self.holding = True  # False: every outcome as soon as it is there

    def release(self, count: int = 1) -> None:
        self._released += self._finished[:count]
        del self._finished[:count]

    def release_task(self, engine, name: str) -> None:  # type: ignore[no-untyped-def]
        """The first held outcome of an attempt of task class ``name``."""
        self._release_first(engine, lambda task: task.name == name, name)

    def release_instance(self, engine, instance_id: str) -> None:  # type: ignore[no-untyped-def]
        """The first held outcome of an attempt of a task of that instance."""
        self._release_first(engine, lambda task: task.instance_id == instance_id, instance_id)

    def _release_first(self, engine, wanted, what: str) -> None:  # type: ignore[no-untyped-def]
        for n, outcome in enumerate(self._finished):
            if wanted(engine.in_flight[outcome.task_id]):
                self._released.append(self._finished.pop(n))
                return
        raise AssertionError(f"no outcome of {what} held")

    def poll(self, timeout: float = 0) -> list[Outcome]:
        if not self.holding:
            self.release(len(self._finished))
        released, self._released = self._released, []
        return released

    def busy(self) -> int:
        return len(self._finished) + len(self._released)


@pytest.fixture
def late(monkeypatch) -> type[LateCommits]:
    monkeypatch.setattr("zenaton_runtime.store.sqlite_commit.CommitThread", LateCommits)
    monkeypatch.setattr(LateCommits, "failures", 0)
    return LateCommits


def make_harness(tmp_path, cache_size: int = 1000, log: list[str] | None = None) -> tuple[Harness, HeldRunner]:
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db", background_commits=True, cache_size=cache_size)
    runner = HeldRunner(h.project, runtime_factory=h._task_runtime)
    h.runner = h.engine.runner = runner  # type: ignore[assignment]
    if log is not None:
        h.engine.emit = log.append
    return h, runner


def completed(h: Harness, instance_id: str) -> int:
    return sum(kind.startswith("task_completed") for kind in h.kinds(instance_id))


def commits_started(h: Harness) -> int:
    thread = h.store._commit_thread  # type: ignore[attr-defined]
    return 0 if thread is None else thread.started


@pytest.mark.parametrize("cache_size", [1000, 0], ids=["cached run", "replayed from the store"])
def test_a_result_for_an_instance_whose_commit_is_in_flight_waits_for_it(tmp_path, late, cache_size) -> None:
    h, runner = make_harness(tmp_path, cache_size)
    instance_id = h.dispatch(Fanout(2))
    h.engine.step()  # both tasks scheduled: nothing else runs, so committed at once, then run
    assert runner.busy() == 2 and commits_started(h) == 0
    runner.release()
    h.engine.step()  # the first result: its commit goes to the background while the second runs
    assert commits_started(h) == 1
    runner.release()
    h.engine.step()  # the second result comes while the first is still committing: it waits
    assert completed(h, instance_id) == 1
    h.engine.step()
    assert h.result(instance_id) == [100, 101]
    assert h.kinds(instance_id) == [
        "started", "task_scheduled:1:Add", "task_scheduled:2:Add",
        "task_completed:1:Add", "task_completed:2:Add", "completed",
    ]
    h.close()


def test_a_custom_id_taken_by_a_commit_in_flight_is_refused_to_the_next_step(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    first = h.dispatch(AddThenStartsCustomId("same"))
    second = h.dispatch(AddThenStartsCustomId("same"))
    h.engine.step()
    runner.release()
    h.engine.step()  # the first parent starts the child "same"; the commit is in flight
    runner.release()
    h.engine.step()  # the second parent decides before that commit lands
    runner.holding = False
    h.run()
    assert commits_started(h) >= 1
    children = [i for i in h.store.list_instances(custom_id="same") if i.name == "CustomId"]
    assert len(children) == 1 and children[0].parent_id == first
    assert h.result(first) == "dispatched"
    assert h.status(second) == "paused"
    assert h.error(second)["class"] == "DuplicateInstanceError"
    h.close()


def test_a_commit_that_fails_in_the_background_loses_nothing_and_is_logged_once(tmp_path, late, flow_log) -> None:
    log: list[str] = []
    h, runner = make_harness(tmp_path, log=log)
    late.failures = 1
    instance_id = h.dispatch(Fanout(2))
    h.engine.step()
    runner.release()
    h.engine.step()  # "task Add completed" decided; its commit in flight, bound to fail
    assert not [line for line in log if "completed" in line]  # a step is logged once it landed
    runner.release()
    h.engine.step()  # lands it: refused; both results wait in memory, nothing of it logged
    assert h.kinds(instance_id) == ["started", "task_scheduled:1:Add", "task_scheduled:2:Add"]
    assert any(line.startswith("cannot write to the store") for line in log)
    assert not [line for line in log if "completed" in line]
    runner.holding = False
    h.run()
    assert h.result(instance_id) == [100, 101]
    assert h.kinds(instance_id) == [
        "started", "task_scheduled:1:Add", "task_scheduled:2:Add",
        "task_completed:1:Add", "task_completed:2:Add", "completed",
    ]
    assert sorted(flow_log.read_text().splitlines()) == ["Add 0 100", "Add 1 100"]  # delivered again, not run again
    assert len([line for line in log if "task Add completed (position 1)" in line]) == 1
    recovered = log.index("the store accepts writes again; carrying on")
    assert recovered < log.index(next(line for line in log if "task Add completed" in line))
    h.close()


def test_a_write_meanwhile_lands_the_commit_first_and_its_tasks_still_run(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    busy = h.dispatch(Fanout(2))
    h.engine.step()
    runner.release()
    h.engine.step()  # in flight: the first result, and no claim yet
    later = h.dispatch(Sequential(5))  # a client write through the same store object
    runner.holding = False
    h.run()
    assert h.result(busy) == [100, 101]
    assert h.result(later) == 16
    h.close()


def test_closing_the_store_lands_the_commit_in_flight(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    instance_id = h.dispatch(Sequential(1))
    other = h.dispatch(Fanout(1))
    h.engine.step()
    runner.release()
    h.engine.step()  # one result decided; its commit (and the next task's claim) in flight
    assert commits_started(h) == 1
    h.close()
    store = open_store(f"sqlite:///{tmp_path}/zenaton.db")
    try:
        completed = [e for i in (instance_id, other) for e in store.journal(i) if e.type.value == "task_completed"]
        assert len(completed) == 1
        assert store.recover() == 2  # the one still running, and the one claimed but never handed out
    finally:
        store.close()


def test_a_failed_commit_landed_before_a_look_keeps_the_results_that_came_with_it(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    late.failures = 1
    instance_id = h.dispatch(Fanout(2))
    h.engine.step()
    runner.release()
    h.engine.step()  # the first result's commit will fail
    h.engine.lookout.safety = 0.0  # a look is due: the commit is landed before anything else
    runner.release()
    h.engine.step()  # the second result comes with the failed landing
    h.engine.lookout.safety = 1.0
    runner.holding = False
    h.run()
    assert h.result(instance_id) == [100, 101]
    assert h.engine.in_flight == {}
    h.close()


def _custom_id_freed_meanwhile(h: Harness, runner: HeldRunner) -> tuple[str, str]:
    holder = h.dispatch(CustomId("k"))  # one task, then completes: "k" is free again
    starter = h.dispatch(AddThenStartsCustomId("k"))  # one task, then starts CustomId("k")
    h.engine.step()
    runner.release()
    h.engine.step()  # the holder completes; with background commits, that commit is in flight
    runner.release()
    h.engine.step()  # the starter decides: "k" is free in commit order
    runner.holding = False
    h.run()
    return holder, starter


def test_a_custom_id_freed_by_the_commit_in_flight_is_free_for_the_next_step(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    holder, starter = _custom_id_freed_meanwhile(h, runner)
    assert h.status(holder) == "completed"
    assert h.result(starter) == "dispatched"
    assert len([i for i in h.store.list_instances(custom_id="k") if i.status.value == "completed"]) == 2
    h.close()


def test_the_same_custom_id_story_committing_at_once(tmp_path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    runner = HeldRunner(h.project, runtime_factory=h._task_runtime)
    h.runner = h.engine.runner = runner  # type: ignore[assignment]
    holder, starter = _custom_id_freed_meanwhile(h, runner)
    assert h.status(holder) == "completed" and h.result(starter) == "dispatched"
    h.close()


def test_a_rewind_lands_before_its_detached_children_decide(tmp_path, late) -> None:
    h, runner = make_harness(tmp_path)
    parent_id = h.dispatch(Parent())
    h.engine.step()  # the parent starts its child
    h.engine.step()  # the child's task runs; its outcome is held
    h.control.pause(h.instance(parent_id))
    h.engine.step()  # the pause, committing in the background (the child's task is running)
    h.engine.step()
    assert h.status(parent_id) == "paused"
    request_rewind(h.store, h.instance(parent_id), 1)
    before = commits_started(h)
    h.engine.step()  # the rewind detaches the child: committed at once, not in the background
    assert commits_started(h) == before
    runner.release()
    h.engine.step()  # the child completes, detached: it tells its old parent nothing
    assert not [item for item in h.store.inbox(parent_id) if item.kind == "child_completed"]
    runner.holding = False
    h.run()
    assert h.result(parent_id) == "child executed"
    h.close()


def test_a_resumed_instance_s_retry_is_seen_by_the_lookout_after_its_commit(tmp_path, late) -> None:
    """The lookout's next due time is not read while a commit is in flight (it would miss what
    that commit changes: here the resume that makes a queued retry claimable)."""
    h, runner = make_harness(tmp_path)
    h.engine.lookout.safety = math.inf  # no periodic look: only what the lookout knows
    flow = h.dispatch(ContextFlow())  # ContextProbe, then FailTwice (retried 1 s later)
    others = h.dispatch(Fanout(3))  # results that keep commits in the background
    h.engine.step()
    runner.release_task(h.engine, "ContextProbe")
    h.engine.step()
    h.engine.step()
    runner.release_task(h.engine, "FailTwice")
    h.engine.step()  # the failure: a retry queued for 1 s later
    h.engine.step()
    h.control.pause(h.instance(flow))
    h.engine.step()
    h.engine.step()
    assert h.status(flow) == "paused"
    h.control.resume(h.instance(flow))
    h.engine.step()  # the resume, committing
    runner.release_task(h.engine, "Add")
    h.engine.step()
    h.clock.advance(5)
    for _ in range(2):
        runner.release_task(h.engine, "Add")
        h.engine.step()
    for _ in range(5):
        h.engine.step()
    (retry,) = [t for t in h.store.tasks_of(flow) if t.name == "FailTwice"]
    assert retry.attempts >= 2, "the retry that fell due was never claimed"
    assert h.result(others) == [100, 101, 102]
    h.close()

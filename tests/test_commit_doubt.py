"""A step's COMMIT lands, but the daemon never hears it did (the session is lost on the way back,
or the disk reports an error after writing): the engine cannot tell whether the step was
written. Whatever it does next, no task result is recorded twice, and no task it claimed in that
commit is left running with no worker."""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flowlib.workflows import Long, Sequential

from tests.harness import Harness
from zenaton_runtime.models import TaskStatus
from zenaton_runtime.store.postgres_writer import Writer


class Doubt:
    """Arms one COMMIT that runs, then fails as if its answer were lost."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = 0

    def after(self, commit: Callable[[], Any], failure: Exception) -> Any:
        result = commit()
        if self.armed:
            self.armed, self.fired = False, self.fired + 1
            raise failure
        return result


class DoubtedSQLite:
    """The store's sqlite3 connection (its type takes no new attributes), with Doubt at COMMIT."""

    def __init__(self, conn: sqlite3.Connection, doubt: Doubt) -> None:
        self._conn, self._doubt = conn, doubt

    def execute(self, sql: str, *args: Any) -> Any:
        if sql != "COMMIT" or not self._doubt.armed:
            return self._conn.execute(sql, *args)
        return self._doubt.after(lambda: self._conn.execute(sql, *args), sqlite3.OperationalError("disk I/O error"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture(params=["sqlite", "postgres"])
def doubted(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[tuple[Harness, Doubt]]:  # type: ignore[no-untyped-def]
    doubt = Doubt()
    if request.param == "sqlite":
        h = Harness(f"sqlite:///{tmp_path}/zenaton.db", background_commits=True)
        h.store._conn = DoubtedSQLite(h.store._conn, doubt)  # type: ignore[attr-defined]
    else:
        h = Harness(request.getfixturevalue("pg_clean_url"), background_commits=True)
        store: Any = h.store
        lost = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

        def connection() -> Any:
            conn = real_connection()
            if not getattr(conn, "doubted", False):
                real_execute = conn.execute

                def execute(query: Any, *args: Any, **kwargs: Any) -> Any:
                    if query != "COMMIT" or not doubt.armed:
                        return real_execute(query, *args, **kwargs)
                    return doubt.after(lambda: real_execute(query, *args, **kwargs), lost)

                conn.execute, conn.doubted = execute, True
            return conn

        def flush(writer: Writer, then: Any = (), commit: bool = False) -> Any:  # a step's COMMIT goes with its rows
            rows = real_flush(writer, then, commit)
            return doubt.after(lambda: rows, lost) if writer.committed else rows

        real_connection, real_flush = store._connection, Writer.flush
        monkeypatch.setattr(store, "_connection", connection)
        monkeypatch.setattr(Writer, "flush", flush)
    h.engine.emit = lambda line: None
    try:
        yield h, doubt
    finally:
        h.close()


def test_a_step_whose_commit_landed_unheard_records_no_result_twice(doubted: tuple[Harness, Doubt]) -> None:
    h, doubt = doubted
    instance_id = h.dispatch(Long(8))
    for _ in range(6):
        h.engine.step()
    assert "task_completed:1:Add" in h.kinds(instance_id)  # on its way, results coming
    doubt.armed = True
    for _ in range(20):
        h.engine.step()
        if doubt.fired:
            break
    assert doubt.fired == 1 and h.engine.store_failure is not None
    h.run()
    assert h.status(instance_id) == "completed" and h.result(instance_id) == 8
    kinds = h.kinds(instance_id)
    for position in range(1, 9):
        assert kinds.count(f"task_completed:{position}:Add") == 1, kinds
    assert not [t for t in h.store.tasks_of(instance_id) if t.status.value in ("queued", "running")]
    assert h.engine.stats.completed == 8  # the landed commit's results counted once, as they landed


def test_running_attempts_waits_for_the_statement_a_lost_session_still_runs(pg_clean_url: str) -> None:
    """The server may still be running the COMMIT of a session the daemon lost: what is running
    is read once that session's statement ended. Here another session stands for the lost one."""
    import threading

    from tests.test_store_contract import create, task
    from zenaton_runtime.store.postgres import PostgresStore

    store = PostgresStore(pg_clean_url)
    create(store, "w", with_task=task("t", "w"))
    ghost = psycopg.connect(pg_clean_url, autocommit=True)
    ghost.execute("SET search_path = zenaton")
    ended = threading.Event()

    def slow_commit() -> None:  # one statement, still running when the client went away
        ghost.execute("BEGIN; UPDATE tasks SET status = 'running', attempts = 1 WHERE id = 't';"
                      " SELECT pg_sleep(0.3); COMMIT")
        ended.set()

    try:
        store._lost_pid = ghost.info.backend_pid  # as _connection() notes it when it reopens
        thread = threading.Thread(target=slow_commit)
        thread.start()
        watch = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
        with psycopg.connect(pg_clean_url, autocommit=True) as watcher:  # until the server runs it
            while not watcher.execute(watch, (ghost.info.backend_pid,)).fetchall():
                assert thread.is_alive()
        assert store.running_attempts(["t", "other"]) == {"t": 1}  # waited, then saw what it wrote
        assert ended.wait(0)
        thread.join()
        assert store.running_attempts(["t"]) == {"t": 1} and store._lost_pid is None
    finally:
        ghost.close()
        store.close()


def rewind_with_an_attempt_running(h: Harness) -> tuple[str, str, list[Any]]:
    """Sequential(1) with its first attempt finished unseen, paused, a rewind to step 1 asked:
    the instance, the task of that attempt and its held outcome."""
    instance_id = h.dispatch(Sequential(1))
    h.engine.step()  # step 1 scheduled and claimed
    held = h.finished_outcomes()
    h.control.pause(h.instance(instance_id))
    h.run()
    h.control.rewind(h.instance(instance_id), 1)
    (task,) = h.store.tasks_of(instance_id)
    return instance_id, task.id, held


REWOUND = [
    "started", "rewound", "task_scheduled:1:Add", "task_completed:1:Add",
    "task_scheduled:2:Add", "task_completed:2:Add", "completed",
]


def test_a_rewind_whose_commit_failed_still_awaits_the_attempt_it_cancels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    h.engine.emit = lambda line: None
    try:
        instance_id, task_id, held = rewind_with_an_attempt_running(h)
        h.store._conn.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
        h.engine.step()
        assert h.engine.store_failure is not None
        assert task_id in h.engine.in_flight  # the rewind is not written: its attempt still reports here
        h.store._conn.execute("PRAGMA query_only = OFF")  # type: ignore[attr-defined]
        h.engine.step()  # the doubt settled (the task still running: not re-queued), the rewind applied
        assert task_id not in h.engine.in_flight
        assert h.store.tasks_of(instance_id)[0].status is TaskStatus.CANCELLED
        h.engine.take_outcomes(held)
        h.run()
        assert h.result(instance_id) == 12 and h.kinds(instance_id) == REWOUND
    finally:
        h.close()


def test_a_rewind_whose_commit_landed_unheard_forgets_the_attempt_it_cancelled(
    doubted: tuple[Harness, Doubt],
) -> None:
    h, doubt = doubted
    instance_id, task_id, held = rewind_with_an_attempt_running(h)
    doubt.armed = True
    h.engine.step()
    assert doubt.fired == 1 and h.engine.store_failure is not None
    h.engine.step()  # the doubt settled: the store has the task cancelled, so the rewind landed
    assert task_id not in h.engine.in_flight
    h.engine.take_outcomes(held)  # the stale attempt reports: to no one
    h.run()
    assert h.result(instance_id) == 12 and h.kinds(instance_id) == REWOUND
    assert [t.status for t in h.store.tasks_of(instance_id)] == [TaskStatus.CANCELLED] + [TaskStatus.DONE] * 2

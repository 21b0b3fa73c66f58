"""A PostgreSQL step committed in the background (what the daemon asks while attempts run): its
whole transaction runs on a thread, on the store's connection, while the engine goes on.

Each case holds the step inside its transaction with a row lock taken by another session, so the
step is truly in flight (its connection busy, waiting on the server) while the test reads,
writes, closes, or lands it; then lets it go.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from flowlib.workflows import Sequential  # type: ignore[import-not-found]

from tests.harness import Harness
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.test_background_commits import HeldRunner
from tests.test_store_contract import create, task
from zenaton_runtime.errors import LeaseLost, StoreError
from zenaton_runtime.models import Entry, InboxKind, InstanceStatus, TaskStatus
from zenaton_runtime.store import Batch, NewEntry
from zenaton_runtime.store.postgres import PostgresStore


@contextmanager
def row_locked(url: str, instance_id: str) -> Iterator[psycopg.Connection]:
    """Another session holds the instance's row: a step that updates it waits inside its transaction."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1 FROM zenaton.instances WHERE id = %s FOR UPDATE", (instance_id,))
        yield conn


def waiting_on_lock(url: str) -> int:
    """Sessions of the database waiting for a lock (the step in flight, once it reached its UPDATE)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return int(row[0])  # type: ignore[index]


def eventually_waiting(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # the step runs on another thread: ask the server what it waits for, at most 10 s
        for _ in range(1000):
            if waiting_on_lock(url):
                return
            conn.execute("SELECT pg_sleep(0.01)")
    raise AssertionError("the step never reached the lock")


def pause_step(instance_id: str) -> Batch:
    batch = Batch()
    batch.update_instance(instance_id, status=InstanceStatus.PAUSED)
    batch.append(NewEntry(instance_id, Entry.PAUSED))
    return batch


def test_a_step_in_flight_is_read_beside_and_lands_before_the_next_write(pg_clean_url: str) -> None:
    store = PostgresStore(pg_clean_url)
    try:
        create(store, "w", with_task=task("t1", "w"))
        create(store, "v")
        seen = store.changes()
        with row_locked(pg_clean_url, "w") as blocker:
            pending = store.commit_step(pause_step("w"), 1000.0, 5, background=True)
            eventually_waiting(pg_clean_url)
            assert not pending.landed
            # reads go through the second connection: the store without the step
            assert store.get_instance("w").status is InstanceStatus.RUNNING  # type: ignore[union-attr]
            assert [e.type for e in store.journal("w")] == [Entry.STARTED]
            assert store.get_instances(["v"])["v"].status is InstanceStatus.RUNNING
            assert store.changes() == seen  # what it said when the step started: its connection is busy
            blocker.commit()
        store.post("v", InboxKind.EVENT, "go", None)  # a write lands the step first, then writes
        assert pending.landed
        assert [t.id for t in pending.wait()] == []  # the task of a paused instance is not claimed
        assert store.get_instance("w").status is InstanceStatus.PAUSED  # type: ignore[union-attr]
        assert [e.type for e in store.journal("w")] == [Entry.STARTED, Entry.PAUSED]
        assert [i.name for i in store.inbox("v")] == ["go"]
    finally:
        store.close()


def test_a_step_in_flight_claims_its_tasks_once_it_lands(pg_clean_url: str) -> None:
    store = PostgresStore(pg_clean_url)
    try:
        create(store, "w")
        batch = Batch()
        batch.update_instance("w", status=InstanceStatus.RUNNING)
        batch.add_task(task("t1", "w"))
        with row_locked(pg_clean_url, "w") as blocker:
            pending = store.commit_step(batch, 1000.0, 5, background=True)
            eventually_waiting(pg_clean_url)
            assert store.tasks_of("w") == []  # not written yet, as the reader sees it
            blocker.commit()
        claimed = pending.wait()
        assert [(t.id, t.status, t.attempts) for t in claimed] == [("t1", TaskStatus.RUNNING, 1)]
        assert [(t.id, t.status) for t in store.tasks_of("w")] == [("t1", TaskStatus.RUNNING)]
    finally:
        store.close()


def test_closing_the_store_lands_the_step_in_flight(pg_clean_url: str) -> None:
    store = PostgresStore(pg_clean_url)
    create(store, "w")
    with row_locked(pg_clean_url, "w") as blocker:
        pending = store.commit_step(pause_step("w"), 1000.0, 0, background=True)
        eventually_waiting(pg_clean_url)
        blocker.commit()
    store.close()
    assert pending.landed and pending.error is None
    again = PostgresStore(pg_clean_url)
    try:
        assert again.get_instance("w").status is InstanceStatus.PAUSED  # type: ignore[union-attr]
    finally:
        again.close()


def test_a_step_in_flight_that_fails_is_rolled_back_whole_and_the_store_carries_on(pg_clean_url: str) -> None:
    store = PostgresStore(pg_clean_url)
    try:
        create(store, "w")
        batch = pause_step("w")
        batch.append(NewEntry("w", Entry.RESUMED, data="a NUL \x00 character"))  # PostgreSQL refuses it
        pending = store.commit_step(batch, 1000.0, 0, background=True)
        with pytest.raises(StoreError, match="NUL character"):
            pending.wait()
        assert store.get_instance("w").status is InstanceStatus.RUNNING  # type: ignore[union-attr]
        assert [e.type for e in store.journal("w")] == [Entry.STARTED]
        store.commit_step(pause_step("w"), 1000.0, 0, background=True).wait()
        assert store.get_instance("w").status is InstanceStatus.PAUSED  # type: ignore[union-attr]
    finally:
        store.close()


@contextmanager
def refused_in_flight(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Harness, str, str, list[str]]]:
    """Daemon A's engine with a step in flight that B's takeover of the instance ``lost`` (A
    froze past its lease) will refuse; ``kept``'s attempt is still running; A's log."""
    monkeypatch.setattr("zenaton_runtime.store.postgres_leases.LEASES_LOOK", 0.0)
    h = Harness(url, background_commits=True)
    runner = HeldRunner(h.project, runtime_factory=h._task_runtime)
    h.runner = h.engine.runner = runner  # type: ignore[assignment]
    log: list[str] = []
    h.engine.emit = log.append
    other = PostgresStore(url)
    try:
        h.store.take_lease("A", 60)
        other.take_lease("B", 60)
        lost, kept = h.dispatch(Sequential(3)), h.dispatch(Sequential(4))
        h.engine.step()  # A claims both and hands their first tasks out; their outcomes are held
        assert {t.instance_id for t in h.engine.in_flight.values()} == {lost, kept}
        with psycopg.connect(url, autocommit=True) as conn:  # A froze past its lease
            conn.execute("UPDATE zenaton.leases SET until = 0 WHERE id = 'A'")
        assert other.claim_instances(1).ids == [lost]  # B takes the first one over
        journal = h.store.journal(lost)
        runner.release_instance(h.engine, lost)
        h.engine.step()  # the lost one's result, written in the background (kept's attempt still running)
        landing = h.engine._landing  # type: ignore[attr-defined]
        assert landing is not None and landing.held == {lost}
        yield h, lost, kept, log
        assert isinstance(landing.pending.error, LeaseLost) and landing.pending.error.instance_ids == [lost]
        assert h.engine.stats.instances_lost == 1
        assert h.store.journal(lost) == journal
        runner.holding = False
        h.engine.run_until_idle()
        assert h.status(kept) == "completed"
        assert h.store.journal(lost) == journal  # never a result of the lost one from A
        assert h.status(lost) == "running"  # B's now
        assert h.engine.stats.instances_lost == 1 and h.engine.store_failure is None
        assert not [line for line in log if "cannot write" in line]  # a lost lease is no store failure
        assert [str(line) for line in log if "lost" in line] == ["lost 1 instance(s) to another daemon"]
    finally:
        other.close()
        h.close()


def test_a_background_step_refused_for_a_lost_lease_drops_that_instance_at_the_next_step(
    pg_clean_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with refused_in_flight(pg_clean_url, monkeypatch) as (h, lost, kept, log):
        h.engine.step()  # lands it: refused whole, the lost one dropped
        assert lost not in h.engine.cache._runs  # type: ignore[attr-defined]
        assert [t.instance_id for t in h.engine.in_flight.values()] == [kept]
        assert h.engine.stats.completed == 0  # the lost one's attempt uncounted


def test_a_background_step_refused_for_a_lost_lease_drops_that_instance_when_the_daemon_lands_it(
    pg_clean_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with refused_in_flight(pg_clean_url, monkeypatch) as (h, lost, kept, log):
        assert h.engine.settle() == 0  # the daemon lands it between steps (a heartbeat, retention, stopping)
        assert lost not in h.engine.cache._runs  # type: ignore[attr-defined]
        assert [t.instance_id for t in h.engine.in_flight.values()] == [kept]
        assert h.engine._pending == []  # type: ignore[attr-defined]  # nothing of the lost one comes back

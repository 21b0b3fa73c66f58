"""Retention on every Store backend: prunable() and prune() (memory, SQLite, PostgreSQL)."""
from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from tests.store_helpers import apply
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server  # noqa: F401  (fixtures)
from tests.test_store_contract import Clock, apply_calls, clock, create, instance, started, store, task  # noqa: F401
from zenaton_runtime.models import Entry, InboxKind, InstanceStatus, TaskStatus, Timer
from zenaton_runtime.store import Batch, NewEntry, Store
from zenaton_runtime.store.sqlite import SQLiteStore

DONE = (InstanceStatus.COMPLETED, InstanceStatus.KILLED, InstanceStatus.FAILED)


def finish(store: Store, clock: Clock, id: str, status: InstanceStatus, at: float) -> None:
    clock.t = at
    batch = Batch()
    batch.update_instance(id, status=status)
    apply(store, batch)


def _full(store: Store, id: str, **kw: Any) -> None:
    """An instance with a journal, a task, a timer, an inbox item and an archived run."""
    create(store, id, **kw)
    apply_calls(
        store,
        ("append", (NewEntry(id, Entry.TASK_SCHEDULED, 1, "Charge"),)),
        ("add_task", (task(f"{id}-t", id, status=TaskStatus.DONE),)),
        ("rewind", (id, 1, 1)),
        ("append", (NewEntry(id, Entry.REWOUND),)),
        ("add_timer", (Timer(id, 2, 5000.0),)),
    )
    store.post(id, InboxKind.EVENT, "Late", "{}")


def test_prunable_lists_old_finished_instances_least_recently_updated_first(store: Store, clock: Clock) -> None:
    for id in ("a", "b", "c", "d", "e"):
        create(store, id)
    finish(store, clock, "b", InstanceStatus.COMPLETED, 1100.0)
    finish(store, clock, "a", InstanceStatus.COMPLETED, 1200.0)
    finish(store, clock, "c", InstanceStatus.KILLED, 1300.0)
    finish(store, clock, "d", InstanceStatus.COMPLETED, 5000.0)  # too recent
    # "e" runs
    assert store.prunable(DONE, 2000.0, 10) == ["b", "a", "c"]
    assert store.prunable([InstanceStatus.COMPLETED], 2000.0, 10) == ["b", "a"]
    assert store.prunable(DONE, 2000.0, 2) == ["b", "a"]
    assert store.prunable([InstanceStatus.RUNNING, InstanceStatus.PAUSED], 1e12, 10) == []  # never unfinished
    assert store.prunable(DONE, 1e12, 10) == ["b", "a", "c", "d"]


def test_prune_removes_the_instance_and_everything_it_owns(store: Store, clock: Clock) -> None:
    _full(store, "gone")
    _full(store, "kept")
    finish(store, clock, "gone", InstanceStatus.COMPLETED, 1500.0)
    finish(store, clock, "kept", InstanceStatus.COMPLETED, 1500.0)
    assert store.archive("gone") and store.tasks_of("gone") and store.inbox("gone")
    assert store.prune(["gone", "unknown", "gone"]) == 1
    assert store.get_instance("gone") is None
    assert store.journal("gone") == [] and store.archive("gone") == [] and store.tasks_of("gone") == []
    assert store.inbox("gone") == [] and [t.instance_id for t in store.due_timers(1e12, 10)] == ["kept"]
    assert store.list_instances() == [store.get_instance("kept")]
    assert len(store.journal("kept")) == 2 and store.archive("kept") and store.tasks_of("kept") and store.inbox("kept")
    assert store.counts()["completed"] == 1
    assert store.prune([]) == 0


def test_prune_never_removes_an_unfinished_instance(store: Store, clock: Clock) -> None:
    create(store, "running")
    create(store, "paused")
    finish(store, clock, "paused", InstanceStatus.PAUSED, 1100.0)
    assert store.prune(["running", "paused"]) == 0
    assert store.get_instance("running") is not None and store.get_instance("paused") is not None


def test_prune_checks_again_inside_its_transaction(store: Store, clock: Clock) -> None:
    """An instance listed as prunable, then made unfinished (a retry, a rewind), stays."""
    create(store, "w")
    finish(store, clock, "w", InstanceStatus.COMPLETED, 1100.0)
    assert store.prunable(DONE, 2000.0, 10) == ["w"]
    finish(store, clock, "w", InstanceStatus.RUNNING, 1200.0)  # the retry lands first
    assert store.prune(["w"], before=2000.0) == 0 and store.get_instance("w") is not None
    finish(store, clock, "w", InstanceStatus.COMPLETED, 2500.0)  # finished again, but after the cutoff
    assert store.prune(["w"], before=2000.0) == 0 and store.get_instance("w") is not None
    assert store.prune(["w"]) == 1


def test_a_finished_child_of_an_unfinished_parent_stays_and_so_does_its_parent(store: Store, clock: Clock) -> None:
    create(store, "parent")
    create(store, "child", parent_id="parent")
    create(store, "orphan", parent_id="nobody")
    finish(store, clock, "child", InstanceStatus.COMPLETED, 1100.0)
    finish(store, clock, "orphan", InstanceStatus.COMPLETED, 1100.0)
    assert store.prunable(DONE, 2000.0, 10) == ["orphan"]
    assert store.prune(["child"]) == 0
    finish(store, clock, "parent", InstanceStatus.PAUSED, 1150.0)
    assert store.prune(["child"]) == 0

    # a finished parent whose child still runs stays too (the child would report to it)
    create(store, "p2")
    create(store, "c2", parent_id="p2")
    finish(store, clock, "p2", InstanceStatus.KILLED, 1200.0)
    assert "p2" not in store.prunable(DONE, 2000.0, 10) and store.prune(["p2"]) == 0

    finish(store, clock, "parent", InstanceStatus.COMPLETED, 1300.0)
    assert sorted(store.prunable(DONE, 2000.0, 10)) == ["child", "orphan", "parent"]
    assert store.prune(["child", "parent", "orphan"]) == 3


def test_a_custom_id_stays_free_after_a_prune(store: Store, clock: Clock) -> None:
    create(store, "w1", custom_id="order-1")
    finish(store, clock, "w1", InstanceStatus.COMPLETED, 1100.0)
    assert store.prune(["w1"]) == 1
    create(store, "w2", custom_id="order-1")
    assert store.list_instances(custom_id="order-1") == [store.get_instance("w2")]


def test_the_sqlite_prune_reads_the_partial_index(tmp_path: Any) -> None:
    s = SQLiteStore(tmp_path / "z.db")
    try:
        plan = " ".join(
            str(r[3])
            for r in s._conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM instances WHERE status IN ('completed', 'killed', 'failed')"
                " AND status IN ('completed') AND updated_at < 1 ORDER BY updated_at LIMIT 5"
            )
        )
        assert "instances_finished" in plan, plan
        assert "tasks_by_instance" in " ".join(
            str(r[3]) for r in s._conn.execute("EXPLAIN QUERY PLAN DELETE FROM tasks WHERE instance_id IN ('a')")
        )
    finally:
        s.close()


def test_an_incremental_sqlite_store_gives_pages_back_as_it_prunes(tmp_path: Any) -> None:
    path = tmp_path / "z.db"
    clock = Clock()
    s = SQLiteStore(path, now=clock)
    try:
        s._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        s._conn.execute("VACUUM")
        for n in range(300):
            s.create_instance(dataclasses.replace(instance(f"i{n}"), data='"' + "x" * 4000 + '"'), started(f"i{n}"))
            finish(s, clock, f"i{n}", InstanceStatus.COMPLETED, 1000.0)
        s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = s._conn.execute("PRAGMA page_count").fetchone()[0]
        assert s.prune(s.prunable(DONE, 1e12, 1000)) == 300
        assert s._conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert s._conn.execute("PRAGMA page_count").fetchone()[0] < pages / 5
    finally:
        s.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

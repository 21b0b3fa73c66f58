"""One contract suite for every Store backend, on real databases in tmp_path."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from typing import Any, Iterator

import pytest

from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server  # noqa: F401  (fixtures)
from tests.store_helpers import apply, claim_tasks, next_wakeup
from zenaton_runtime.errors import DuplicateInstanceError, NotFoundError, StoreError
from zenaton_runtime.models import (
    DaemonRecord, Entry, Instance, InstanceCount, InstanceStatus, Kind, Schedule, TaskRecord, TaskStatus, Timer,
)
from zenaton_runtime.store import Batch, NewEntry, Store
from zenaton_runtime.store.memory import MemoryStore
from zenaton_runtime.store.ops import UpdateInstance
from zenaton_runtime.store.schema import LATEST, migrate
from zenaton_runtime.store.sqlite import SQLiteStore


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any, clock: Clock) -> Iterator[Store]:
    s: Store
    if request.param == "postgres":
        from zenaton_runtime.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_clean_url"), now=clock)  # an empty store
    else:
        s = MemoryStore(now=clock) if request.param == "memory" else SQLiteStore(tmp_path / "z.db", now=clock)
    yield s
    s.close()


def instance(
    id: str, *, name: str = "Order", env: str = "dev", custom_id: str | None = None, kind: Kind = Kind.WORKFLOW,
    status: InstanceStatus = InstanceStatus.RUNNING, created_at: float = 100.0, parent_id: str | None = None,
) -> Instance:
    return Instance(
        id=id, kind=kind, name=name, version=None, custom_id=custom_id, env=env, status=status, data='{"o": 1}',
        properties=None, error=None, parent_id=parent_id, parent_position=None if parent_id is None else 3,
        created_at=created_at, updated_at=created_at,
    )


def started(id: str) -> NewEntry:
    return NewEntry(id, Entry.STARTED, data='{"version": null}')


def task(id: str, instance_id: str, *, run_at: float = 0.0, status: TaskStatus = TaskStatus.QUEUED) -> TaskRecord:
    return TaskRecord(id, instance_id, 1, "Charge", '{"t": 1}', status, 0, 0, run_at, 50.0)


def create(store: Store, id: str, *, with_task: TaskRecord | None = None, **kw: Any) -> Instance:
    i = instance(id, **kw)
    store.create_instance(i, started(id), with_task)
    return i


def apply_calls(store: Store, *calls: tuple[str, tuple[Any, ...]]) -> None:
    batch = Batch()
    for op, args in calls:
        getattr(batch, op)(*args)
    apply(store, batch)


def snapshot(store: Store, ids: list[str]) -> Any:
    return (
        [store.get_instance(i) for i in ids], [store.journal(i) for i in ids], [store.tasks_of(i) for i in ids],
        [store.inbox(i) for i in ids], store.ready_instances(100), store.due_timers(1e12, 100), store.counts(),
    )


# -- create / get / list --------------------------------------------------------


def test_create_and_get_round_trip(store: Store, clock: Clock) -> None:
    i = create(store, "w1", custom_id="c1", parent_id="p0")
    got = store.get_instance("w1")
    assert got == i and isinstance(got.kind, Kind) and isinstance(got.status, InstanceStatus)
    [entry] = store.journal("w1")
    assert (entry.seq, entry.type, entry.data, entry.created_at) == (1, Entry.STARTED, '{"version": null}', clock.t)
    assert isinstance(entry.type, Entry)
    assert store.get_instance("nope") is None
    assert store.ready_instances(10) == ["w1"]


def test_standalone_task_instance_is_not_ready_and_has_its_task(store: Store) -> None:
    t = task("t1", "k1")
    create(store, "k1", kind=Kind.TASK, name="Charge", with_task=t)
    assert store.tasks_of("k1") == [t]
    assert isinstance(store.tasks_of("k1")[0].status, TaskStatus)
    assert store.ready_instances(10) == []
    assert store.counts()["tasks_queued"] == 1


def test_list_filters_and_newest_first(store: Store) -> None:
    create(store, "a1", created_at=1.0, custom_id="x")
    create(store, "a2", created_at=3.0, env="prod")
    create(store, "a3", created_at=2.0, name="Ship", parent_id="a1")
    create(store, "b1", created_at=2.0, kind=Kind.TASK, with_task=task("t", "b1"))
    apply(store, _status_batch("a1", InstanceStatus.COMPLETED))

    def ids(**kw: Any) -> list[str]:
        return [i.id for i in store.list_instances(**kw)]

    assert ids() == ["a2", "b1", "a3", "a1"]  # equal created_at: later insertion first
    assert ids(limit=2) == ["a2", "b1"]
    assert ids(limit=0) == []
    assert ids(env="prod") == ["a2"]
    assert ids(name="Ship") == ["a3"]
    assert ids(status=InstanceStatus.COMPLETED) == ["a1"]
    assert ids(status=InstanceStatus.RUNNING, env="dev") == ["b1", "a3"]
    assert ids(custom_id="x") == ["a1"]
    assert ids(kind="task") == ["b1"]
    assert ids(kind=Kind.WORKFLOW, limit=1) == ["a2"]
    assert ids(parent_id="a1") == ["a3"]
    assert ids(id_prefix="a") == ["a2", "a3", "a1"]
    assert ids(id_prefix="b1") == ["b1"]
    assert ids(id_prefix="A") == [] and ids(id_prefix="1") == [] and ids(id_prefix="a1x") == []


def test_list_pages_by_keyset_with_before(store: Store) -> None:
    create(store, "old", created_at=1.0)
    for n in range(5):  # equal created_at: insertion order breaks the tie
        create(store, f"s{n}", created_at=2.0, status=InstanceStatus.PAUSED if n % 2 else InstanceStatus.RUNNING)
    create(store, "new", created_at=3.0)
    everything = [i.id for i in store.list_instances()]
    assert everything == ["new", "s4", "s3", "s2", "s1", "s0", "old"]

    def pages(**kw: Any) -> list[list[str]]:
        found, before = [], None
        while True:
            page = [i.id for i in store.list_instances(limit=2, before=before, **kw)]
            if not page:
                return found
            found.append(page)
            before = page[-1]

    assert pages() == [["new", "s4"], ["s3", "s2"], ["s1", "s0"], ["old"]]
    assert pages(status=InstanceStatus.PAUSED) == [["s3", "s1"]]
    assert [i.id for i in store.list_instances(before="s2")] == ["s1", "s0", "old"]
    # the cursor need not match the filters: it only marks a place in the order
    assert [i.id for i in store.list_instances(status=InstanceStatus.PAUSED, before="s4")] == ["s3", "s1"]
    assert store.list_instances(before="old") == []
    assert store.list_instances(before="no-such-id") == []


def test_instance_counts_by_kind_name_and_status(store: Store) -> None:
    assert store.instance_counts() == []
    create(store, "a", name="Order")
    create(store, "b", name="Order")
    create(store, "c", name="Order", env="prod")
    create(store, "d", name="Invoice")
    create(store, "k", kind=Kind.TASK, name="Charge", with_task=task("t", "k"))
    apply(store, _status_batch("b", InstanceStatus.COMPLETED))
    apply(store, _status_batch("d", InstanceStatus.PAUSED))
    counts = store.instance_counts()
    assert counts == [
        ("task", "Charge", "running", 1),
        ("workflow", "Invoice", "paused", 1),
        ("workflow", "Order", "completed", 1),
        ("workflow", "Order", "running", 2),
    ]
    first = counts[0]
    assert isinstance(first, InstanceCount) and first.kind is Kind.TASK and first.status is InstanceStatus.RUNNING
    assert first.instances == 1
    assert store.instance_counts("prod") == [InstanceCount(Kind.WORKFLOW, "Order", InstanceStatus.RUNNING, 1)]
    assert store.instance_counts("nowhere") == []


def _status_batch(instance_id: str, status: InstanceStatus) -> Batch:
    batch = Batch()
    batch.update_instance(instance_id, status=status)
    return batch


# -- custom ids -----------------------------------------------------------------


def test_duplicate_custom_id_refused_among_unfinished_only(store: Store) -> None:
    create(store, "w1", custom_id="c")
    with pytest.raises(DuplicateInstanceError, match=r"'Order'.*unfinished.*'c'"):
        create(store, "w2", custom_id="c")
    assert store.get_instance("w2") is None and store.journal("w2") == []
    apply(store, _status_batch("w1", InstanceStatus.PAUSED))
    with pytest.raises(DuplicateInstanceError):
        create(store, "w2", custom_id="c")
    create(store, "e1", custom_id="c", env="prod")  # another env
    create(store, "n1", custom_id="c", name="Ship")  # another name
    create(store, "k1", custom_id="c", kind=Kind.TASK)  # tasks never conflict
    create(store, "k2", custom_id="c", kind=Kind.TASK)
    create(store, "u1")
    create(store, "u2")  # no custom id, no conflict
    apply(store, _status_batch("w1", InstanceStatus.COMPLETED))
    create(store, "w2", custom_id="c")  # free again after the first finished
    apply(store, _status_batch("w2", InstanceStatus.KILLED))
    create(store, "w3", custom_id="c")
    with pytest.raises(DuplicateInstanceError):  # w2 cannot come back while w3 holds the id
        apply(store, _status_batch("w2", InstanceStatus.RUNNING))
    assert store.get_instance("w2").status is InstanceStatus.KILLED  # type: ignore[union-attr]


def test_duplicate_instance_id_is_a_store_error(store: Store) -> None:
    create(store, "w1")
    with pytest.raises(StoreError):
        create(store, "w1")
    assert len(store.journal("w1")) == 1


def test_batch_create_instance_with_a_taken_custom_id_fails_the_whole_batch(store: Store, clock: Clock) -> None:
    create(store, "p")
    create(store, "c1", custom_id="same", name="Child")
    batch = Batch()
    batch.create_instance(instance("k", kind=Kind.TASK), started("k"), task("tk", "k"))
    batch.create_instance(instance("c2", custom_id="same", name="Child"), started("c2"))
    batch.append(NewEntry("p", Entry.DISPATCHED, position=1, name="Child", data='{"id": "c2"}'))
    with pytest.raises(StoreError, match="taken after the step decided"):
        apply(store, batch)
    assert store.get_instance("c2") is None and store.get_instance("k") is None
    assert [e.seq for e in store.journal("p")] == [1]
    assert store.ready_instances(10) == ["p", "c1"]


# -- journal --------------------------------------------------------------------


def test_journal_numbering_and_after_seq(store: Store, clock: Clock) -> None:
    create(store, "w1")
    create(store, "w2")
    clock.t = 2000.0
    apply_calls(store, ("append", (NewEntry("w1", Entry.TASK_SCHEDULED, 1, "Charge", '{"task_id": "t"}'),)),
          ("append", (NewEntry("w2", Entry.PAUSED),)),
          ("append", (NewEntry("w1", Entry.TASK_COMPLETED, 1, None, '{"result": 2}', "props"),)))
    apply_calls(store, ("append", (NewEntry("w1", Entry.COMPLETED, data="{}"),)))
    j = store.journal("w1")
    assert [e.seq for e in j] == [1, 2, 3, 4]
    assert [e.type for e in j] == [Entry.STARTED, Entry.TASK_SCHEDULED, Entry.TASK_COMPLETED, Entry.COMPLETED]
    assert (j[2].position, j[2].data, j[2].properties, j[2].created_at) == (1, '{"result": 2}', "props", 2000.0)
    assert [e.seq for e in store.journal("w1", after_seq=2)] == [3, 4]
    assert store.journal("w1", after_seq=4) == []
    assert [e.seq for e in store.journal("w2")] == [1, 2]


# -- inbox / ready --------------------------------------------------------------


def test_post_inbox_and_ready_flags(store: Store, clock: Clock) -> None:
    create(store, "old", created_at=1.0)
    create(store, "new", created_at=2.0)
    create(store, "k", created_at=0.5, kind=Kind.TASK)
    assert store.ready_instances(10) == ["old", "new"]
    assert store.ready_instances(1) == ["old"]
    apply_calls(store, ("consume_inbox", ("old", [])), ("consume_inbox", ("new", [])))
    assert store.ready_instances(10) == []
    a = store.post("new", "event", "Paid", '{"n": 1}')
    clock.t = 1001.0
    b = store.post("new", "pause")
    assert b > a
    assert store.ready_instances(10) == ["new"]
    items = store.inbox("new")
    assert [(i.id, i.kind, i.name, i.data, i.created_at) for i in items] == [
        (a, "event", "Paid", '{"n": 1}', 1000.0), (b, "pause", None, None, 1001.0)]
    apply_calls(store, ("consume_inbox", ("new", [a])))
    assert store.ready_instances(10) == ["new"] and [i.id for i in store.inbox("new")] == [b]
    apply_calls(store, ("post", ("k", "child_completed", None, "{}")))  # batch post; tasks can be made ready too
    assert store.ready_instances(10) == ["k", "new"]
    apply_calls(store, ("consume_inbox", ("new", [b])))
    assert store.ready_instances(10) == ["k"] and store.inbox("new") == []
    with pytest.raises(NotFoundError):
        store.post("ghost", "event")
    assert store.inbox("ghost") == []


# -- tasks ----------------------------------------------------------------------


def test_claim_tasks(store: Store) -> None:
    create(store, "w")
    apply_calls(store, ("add_task", (task("late", "w", run_at=50.0),)), ("add_task", (task("t2", "w", run_at=5.0),)),
          ("add_task", (task("t1", "w", run_at=1.0),)), ("add_task", (task("t3", "w", run_at=5.0),)),
          ("add_task", (task("done", "w", status=TaskStatus.DONE),)))
    claimed = claim_tasks(store, 10.0, 2)
    assert [(t.id, t.status, t.attempts) for t in claimed] == [("t1", TaskStatus.RUNNING, 1), ("t2", TaskStatus.RUNNING, 1)]
    assert [t.id for t in claim_tasks(store, 10.0, 10)] == ["t3"]
    assert claim_tasks(store, 10.0, 10) == []
    assert claim_tasks(store, 100.0, 0) == []
    by_id = {t.id: t for t in store.tasks_of("w")}
    assert by_id["t1"].status is TaskStatus.RUNNING and by_id["t1"].attempts == 1
    assert by_id["late"].status is TaskStatus.QUEUED and by_id["done"].status is TaskStatus.DONE
    assert [t.id for t in store.tasks_of("w")] == ["late", "t2", "t1", "t3", "done"]
    assert store.counts()["tasks_queued"] == 1


def test_update_task_none_fields_left_alone(store: Store) -> None:
    create(store, "w", with_task=task("t", "w", run_at=3.0))
    claim_tasks(store, 10.0, 1)
    apply_calls(store, ("update_task", ("t",)))
    assert store.tasks_of("w")[0] == TaskRecord("t", "w", 1, "Charge", '{"t": 1}', TaskStatus.RUNNING, 0, 1, 3.0, 50.0)
    batch = Batch()
    batch.update_task("t", status=TaskStatus.QUEUED, retry_index=1, run_at=30.0)
    apply(store, batch)
    t = store.tasks_of("w")[0]
    assert (t.status, t.retry_index, t.run_at, t.attempts) == (TaskStatus.QUEUED, 1, 30.0, 1)
    assert [c.attempts for c in claim_tasks(store, 30.0, 5)] == [2]


def test_cancel_tasks_and_recover(store: Store) -> None:
    create(store, "w")
    create(store, "v")
    apply_calls(store, ("add_task", (task("q", "w"),)), ("add_task", (task("r", "w"),)),
          ("add_task", (task("d", "w", status=TaskStatus.DONE),)), ("add_task", (task("f", "w", status=TaskStatus.FAILED),)),
          ("add_task", (task("v1", "v"),)), ("add_task", (task("v2", "v", run_at=5.0),)))
    batch = Batch()
    batch.update_task("r", status=TaskStatus.RUNNING)
    apply(store, batch)
    apply_calls(store, ("cancel_tasks", ("w",)))
    assert {t.id: t.status for t in store.tasks_of("w")} == {
        "q": TaskStatus.CANCELLED, "r": TaskStatus.CANCELLED, "d": TaskStatus.DONE, "f": TaskStatus.FAILED}
    assert [t.id for t in claim_tasks(store, 10.0, 10)] == ["v1", "v2"]
    assert store.recover() == 2
    assert {(t.id, t.status, t.attempts) for t in store.tasks_of("v")} == {
        ("v1", TaskStatus.QUEUED, 1), ("v2", TaskStatus.QUEUED, 1)}
    assert store.recover() == 0
    assert [t.attempts for t in claim_tasks(store, 10.0, 10)] == [2, 2]
    assert store.running_attempts(["v1", "v2", "q", "nope"]) == {"v1": 2, "v2": 2}
    assert store.recover(keep={"v2", "elsewhere"}) == 1  # what the engine still runs stays running
    assert {(t.id, t.status) for t in store.tasks_of("v")} == {("v1", TaskStatus.QUEUED), ("v2", TaskStatus.RUNNING)}


# -- timers / wakeup --------------------------------------------------------------


def test_timers_and_next_wakeup(store: Store) -> None:
    assert next_wakeup(store) is None
    create(store, "a")
    create(store, "b")
    apply_calls(store, ("add_timer", (Timer("b", 2, 20.0),)), ("add_timer", (Timer("a", 1, 20.0),)),
          ("add_timer", (Timer("a", 4, 10.0),)), ("add_timer", (Timer("b", 9, 99.0),)))
    assert store.due_timers(20.0, 10) == [Timer("a", 4, 10.0), Timer("a", 1, 20.0), Timer("b", 2, 20.0)]
    assert store.due_timers(20.0, 1) == [Timer("a", 4, 10.0)]
    assert store.due_timers(5.0, 10) == []
    assert next_wakeup(store) == 10.0
    apply_calls(store, ("add_task", (task("t", "a", run_at=7.0),)))
    assert next_wakeup(store) == 7.0
    claim_tasks(store, 7.0, 1)  # running tasks do not count
    assert next_wakeup(store) == 10.0
    apply_calls(store, ("delete_timer", ("a", 4)), ("delete_timer", ("a", 77)), ("add_timer", (Timer("b", 2, 30.0),)))
    assert store.due_timers(1e9, 10) == [Timer("a", 1, 20.0), Timer("b", 2, 30.0), Timer("b", 9, 99.0)]
    apply_calls(store, ("delete_timers", ("b",)))
    assert store.due_timers(1e9, 10) == [Timer("a", 1, 20.0)]
    apply_calls(store, ("delete_timers", ("a",)))
    assert next_wakeup(store) is None


def test_a_big_batch_keeps_every_character_of_its_rows(store: Store) -> None:
    """Many rows in one step (PostgreSQL copies them rather than inserting them one by one):
    tabs, newlines, backslashes, quotes, non-ASCII text, empty strings and NULLs come back as
    written, floats to the last bit."""
    create(store, "a")
    odd = ['tab\there', "line\nbreak\r", "back\\slash \\N", "\\.", 'quote " \'', "é ✓ 中文 😀", "", "\\x00"]
    batch = Batch()
    for n in range(40):
        text = odd[n % len(odd)]
        batch.append(NewEntry("a", Entry.EVENT_RECEIVED, position=None if n % 3 else n, name=text or None,
                              data=json.dumps({"v": text}), properties=None if n % 2 else json.dumps([text])))
    for n in range(20):
        text = odd[n % len(odd)]
        batch.add_task(TaskRecord(f"t{n:02}", "a", n + 1, f"Task {text}", json.dumps({"t": text}), TaskStatus.QUEUED,
                                  0, 0, 0.1 + n / 3, 1 / 3 + n))
    apply(store, batch)
    entries = store.journal("a", after_seq=1)
    assert len(entries) == 40
    for n, entry in enumerate(entries):
        text = odd[n % len(odd)]
        assert (entry.seq, entry.position, entry.name) == (n + 2, None if n % 3 else n, text or None)
        assert json.loads(entry.data or "") == {"v": text}
        assert entry.properties == (None if n % 2 else json.dumps([text]))
    tasks = {t.id: t for t in store.tasks_of("a")}
    assert len(tasks) == 20
    for n in range(20):
        t = tasks[f"t{n:02}"]
        assert (t.name, json.loads(t.data), t.run_at, t.created_at) == (
            f"Task {odd[n % len(odd)]}", {"t": odd[n % len(odd)]}, 0.1 + n / 3, 1 / 3 + n)


def test_claiming_only_what_a_batch_adds(store: Store) -> None:
    create(store, "a")
    create(store, "b")
    batch = Batch()
    batch.add_task(task("t", "a"))
    batch.update_instance("a", status=InstanceStatus.PAUSED)  # a's new task must wait for a resume
    batch.add_task(task("u", "b"))
    batch.add_task(task("v", "b"))
    claimed = store.commit_step(batch, 0.0, 1, only_added=True).wait()
    assert [(t.id, t.status, t.attempts) for t in claimed] == [("u", TaskStatus.RUNNING, 1)]
    assert {t.id: t.status for t in store.tasks_of("a") + store.tasks_of("b")} == {
        "t": TaskStatus.QUEUED, "u": TaskStatus.RUNNING, "v": TaskStatus.QUEUED}


def test_open_tasks_are_the_queued_running_and_failed_ones(store: Store) -> None:
    create(store, "a")
    apply_calls(store, *[("add_task", (task(name, "a"),)) for name in ("q", "r", "f", "d", "c")])
    batch = Batch()
    for name, status in (("r", TaskStatus.RUNNING), ("f", TaskStatus.FAILED), ("d", TaskStatus.DONE),
                         ("c", TaskStatus.CANCELLED)):
        batch.update_task(name, status=status)
    apply(store, batch)
    assert [t.id for t in store.open_tasks_of("a")] == ["q", "r", "f"]
    assert [t.id for t in store.tasks_of("a")] == ["q", "r", "f", "d", "c"]
    apply_calls(store, ("cancel_tasks", ("a",)))  # queued and running ones; a failed one stays for retry
    assert [(t.id, t.status) for t in store.open_tasks_of("a")] == [("f", TaskStatus.FAILED)]


def test_next_due_is_what_a_look_at_that_time_could_not_see(store: Store) -> None:
    assert store.next_due(0.0) is None
    create(store, "a")
    apply_calls(store, ("add_timer", (Timer("a", 1, 10.0),)), ("add_timer", (Timer("a", 2, 30.0),)))
    assert store.next_due(0.0) == 10.0
    assert store.next_due(10.0) == 30.0  # a look at 10.0 took the timer due then
    apply_calls(store, ("add_task", (task("t", "a", run_at=20.0),)), ("add_task", (task("u", "a", run_at=5.0),)))
    assert store.next_due(10.0) == 20.0  # a retry falling due; the task queued for 5.0 is claimable now
    claim_tasks(store, 20.0, 2)
    assert store.next_due(10.0) == 30.0  # running tasks do not count
    store.add_schedule(Schedule("s", "dev", Kind.WORKFLOW, "W", None, "{}", "* * * * *", "UTC", 25.0, None, 0, 0, None, 0.0))
    assert store.next_due(10.0) == 25.0
    assert store.next_due(99.0) is None


def test_a_batch_adds_a_schedule_with_its_other_ops_or_not_at_all(store: Store) -> None:
    """A workflow's schedule() is an AddSchedule op in its step's batch: written with the step's
    journal entry, seen by next_due and due_schedules, and rolled back with a failing batch."""
    create(store, "w")
    added = Schedule("s1", "dev", Kind.TASK, "Charge", None, '{"t": 1}', "0 * * * *", "UTC", 3600.0, None, 0, 0, None, 5.0)
    batch = Batch()
    batch.append(NewEntry("w", Entry.SCHEDULE_ADDED, 1, "Charge", '{"schedule": {"id": "s1"}, "refused": null}'))
    batch.add_schedule(added)
    assert batch.due_times == [3600.0]  # the engine's lookout learns when it falls due
    apply(store, batch)
    assert store.list_schedules() == [added]
    assert [e.type for e in store.journal("w")] == [Entry.STARTED, Entry.SCHEDULE_ADDED]
    assert store.next_due(10.0) == 3600.0 and store.due_schedules(3600.0, 10) == [added]
    failing = Batch()
    failing.add_schedule(Schedule("s2", "dev", Kind.TASK, "Charge", None, "{}", "0 * * * *", "UTC", 60.0, None, 0, 0, None, 5.0))
    failing.append(NewEntry("w", Entry.SCHEDULE_ADDED, 2, "Charge"))
    failing.update_task("no-such-task")
    with pytest.raises(NotFoundError):
        apply(store, failing)
    assert store.list_schedules() == [added] and len(store.journal("w")) == 2
    with pytest.raises(StoreError):  # the same id twice: the batch fails whole
        apply_calls(store, ("append", (NewEntry("w", Entry.PAUSED),)), ("add_schedule", (added,)))
    assert store.list_schedules() == [added] and len(store.journal("w")) == 2


# -- instances ------------------------------------------------------------------


def test_update_instance_fields(store: Store, clock: Clock) -> None:
    create(store, "w")
    clock.t = 5000.0
    batch = Batch()
    batch.update_instance("w", properties='{"p": 1}', error='{"class": "E"}')
    apply(store, batch)
    got = store.get_instance("w")
    assert got is not None and (got.properties, got.error, got.status, got.updated_at) == (
        '{"p": 1}', '{"class": "E"}', InstanceStatus.RUNNING, 5000.0)
    batch = Batch()
    batch.update_instance("w", status=InstanceStatus.PAUSED, error=None)
    apply(store, batch)
    got = store.get_instance("w")
    assert got is not None and (got.properties, got.error, got.status) == ('{"p": 1}', None, InstanceStatus.PAUSED)


def test_counts(store: Store) -> None:
    assert store.counts() == {"running": 0, "paused": 0, "completed": 0, "killed": 0, "failed": 0, "tasks_queued": 0}
    create(store, "a")
    create(store, "b")
    create(store, "c")
    create(store, "k", kind=Kind.TASK, with_task=task("t", "k"))
    apply(store, _status_batch("b", InstanceStatus.PAUSED))
    apply(store, _status_batch("c", InstanceStatus.KILLED))
    assert store.counts() == {"running": 2, "paused": 1, "completed": 0, "killed": 1, "failed": 0, "tasks_queued": 1}


# -- atomicity ------------------------------------------------------------------

FAILING_LAST_OPS = {
    "update_task_missing": ("update_task", ("no-such-task",)),
    "append_unknown_instance": ("append", (NewEntry("ghost", Entry.PAUSED),)),
    "update_instance_missing": ("update_instance", ("ghost",)),
    "post_missing": ("post", ("ghost", "event")),
    "add_timer_missing": ("add_timer", (Timer("ghost", 1, 1.0),)),
    "add_task_missing": ("add_task", (task("t9", "ghost"),)),
    "cancel_missing": ("cancel_tasks", ("ghost",)),
    "consume_missing": ("consume_inbox", ("ghost", [1])),
}


@pytest.mark.parametrize("failing", list(FAILING_LAST_OPS), ids=list(FAILING_LAST_OPS))
def test_apply_is_all_or_nothing(store: Store, failing: str) -> None:
    create(store, "w", custom_id="c")
    create(store, "v")
    item = store.post("v", "event")
    apply_calls(store, ("add_task", (task("t1", "w"),)), ("add_timer", (Timer("w", 1, 10.0),)))
    ids = ["w", "v", "child"]
    before = snapshot(store, ids)
    ops = [
        ("append", (NewEntry("w", Entry.TASK_SCHEDULED, 1, "Charge"),)),
        ("append", (NewEntry("w", Entry.TASK_COMPLETED, 1),)),
        ("update_instance", ("w",)),
        ("update_task", ("t1",)),
        ("add_task", (task("t2", "w"),)),
        ("cancel_tasks", ("w",)),
        ("add_timer", (Timer("w", 2, 20.0),)),
        ("delete_timer", ("w", 1)),
        ("consume_inbox", ("v", [item])),
        ("post", ("w", "child_completed")),
        ("create_instance", (instance("child", parent_id="w"), started("child"), task("ct", "child"))),
        ("append", (NewEntry("child", Entry.PAUSED),)),
        FAILING_LAST_OPS[failing],
    ]
    batch = Batch()
    for op, args in ops:
        getattr(batch, op)(*args)
    batch.ops[2] = UpdateInstance("w", InstanceStatus.COMPLETED, batch.ops[2].properties, batch.ops[2].error)  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        apply(store, batch)
    assert snapshot(store, ids) == before
    with pytest.raises(DuplicateInstanceError):  # w's completion was rolled back too
        create(store, "w3", custom_id="c")
    apply_calls(store, ("append", (NewEntry("w", Entry.PAUSED),)))
    assert [e.seq for e in store.journal("w")] == [1, 2]


def test_empty_batch(store: Store) -> None:
    apply(store, Batch())
    assert store.counts()["running"] == 0


# -- sqlite only ----------------------------------------------------------------


def test_sqlite_permissions_wal_and_version(tmp_path: Any) -> None:
    path = tmp_path / "proj" / ".zenaton" / "zenaton.db"
    s = SQLiteStore(path)
    create(s, "w")
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            assert stat.S_IMODE(os.stat(str(path) + suffix).st_mode) == 0o600
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT id, version FROM schema_version").fetchall() == [(1, LATEST)]
    other.close()
    s.close()


def test_sqlite_durability_setting(tmp_path: Any) -> None:
    full, fast = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db", durability="fast")
    assert full._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert fast._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    full.close()
    fast.close()


def test_sqlite_migrations_are_idempotent(tmp_path: Any) -> None:
    path = tmp_path / "z.db"
    s = SQLiteStore(path)
    create(s, "w")
    assert migrate(s._conn, s.transaction) == LATEST
    assert migrate(s._conn, s.transaction) == LATEST
    assert s._conn.execute("SELECT * FROM schema_version").fetchall() == [(1, LATEST)]
    assert s.get_instance("w") is not None
    s.close()


def test_sqlite_reopen_keeps_data(tmp_path: Any, clock: Clock) -> None:
    path = tmp_path / "z.db"
    s = SQLiteStore(path, now=clock)
    create(s, "w", custom_id="c")
    s.post("w", "event")
    apply_calls(s, ("append", (NewEntry("w", Entry.PAUSED),)))
    s.close()
    s = SQLiteStore(path, now=clock)
    assert s.get_instance("w") == instance("w", custom_id="c")
    assert len(s.inbox("w")) == 1 and s.ready_instances(5) == ["w"]
    apply_calls(s, ("append", (NewEntry("w", Entry.RESUMED),)))
    assert [e.seq for e in s.journal("w")] == [1, 2, 3]
    with pytest.raises(DuplicateInstanceError):
        create(s, "w2", custom_id="c")
    s.close()


def test_sqlite_refuses_foreign_sqlite_database(tmp_path: Any) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ann')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another application") as err:
        SQLiteStore(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"hello, this is not a database\n" * 100, b"SQLite"], ids=["text", "short"])
def test_sqlite_refuses_non_sqlite_file(tmp_path: Any, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a SQLite database") as err:
        SQLiteStore(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == content


def test_sqlite_two_stores_see_each_other(tmp_path: Any, clock: Clock) -> None:
    a, b = SQLiteStore(tmp_path / "z.db", now=clock), SQLiteStore(tmp_path / "z.db", now=clock)
    create(a, "w", with_task=task("t", "w"))
    assert b.get_instance("w") is not None
    item = b.post("w", "kill")
    assert [i.id for i in a.inbox("w")] == [item]
    assert [t.id for t in claim_tasks(b, 10.0, 5)] == ["t"]
    assert claim_tasks(a, 10.0, 5) == []
    create(a, "x", custom_id="c")
    with pytest.raises(DuplicateInstanceError):
        create(b, "y", custom_id="c")
    a.close()
    b.close()


def test_sqlite_concurrent_writers_never_see_locked(tmp_path: Any) -> None:
    path = tmp_path / "z.db"
    main = SQLiteStore(path)
    create(main, "w")
    create(main, "k", kind=Kind.TASK)
    apply_calls(main, *[("add_task", (task(f"t{n}", "k"),)) for n in range(200)])
    errors: list[BaseException] = []
    claimed: list[str] = []

    def worker(n: int) -> None:
        s = SQLiteStore(path)
        try:
            for _ in range(40):
                s.post("w", "event", str(n))
                claimed.extend(t.id for t in claim_tasks(s, 1e9, 3))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(main.inbox("w")) == 160
    assert len(claimed) == len(set(claimed)) == 200
    main.close()


# -- rewind: archive and truncate -----------------------------------------------


def _journal_of(store: Store, id: str) -> list[tuple[int, str, int | None]]:
    return [(e.seq, e.type.value, e.position) for e in store.journal(id)]


def _rewind_fixture(store: Store) -> None:
    import dataclasses

    create(store, "w")
    create(store, "other")
    late_child = instance("late", parent_id="w")  # parent_position 3
    early_child = dataclasses.replace(instance("early", parent_id="w"), parent_position=1)
    for child in (late_child, early_child):
        store.create_instance(child, started(child.id))
    apply_calls(
        store,
        ("append", (NewEntry("w", Entry.TASK_SCHEDULED, 1, "Charge"),)),
        ("append", (NewEntry("w", Entry.TASK_COMPLETED, 1, "Charge", properties='{"p": 1}'),)),
        ("append", (NewEntry("w", Entry.TASK_SCHEDULED, 2, "Ship"),)),
        ("append", (NewEntry("w", Entry.TASK_FAILED, 2, "Ship"),)),
        ("append", (NewEntry("w", Entry.ERROR, 2, "ValueError"),)),
        ("append", (NewEntry("other", Entry.PAUSED),)),
        ("add_task", (task("t1", "w", status=TaskStatus.DONE),)),
        ("add_task", (dataclasses.replace(task("t2", "w", status=TaskStatus.FAILED), position=2),)),
        ("add_task", (dataclasses.replace(task("t3", "w", status=TaskStatus.RUNNING), position=3),)),
        ("add_timer", (Timer("w", 1, 10.0),)),
        ("add_timer", (Timer("w", 2, 20.0),)),
        ("add_timer", (Timer("other", 2, 30.0),)),
    )


def test_rewind_archives_the_tail_and_truncates_the_journal(store: Store, clock: Clock) -> None:
    _rewind_fixture(store)
    assert store.archive("w") == []
    clock.t = 2000.0
    apply_calls(store, ("rewind", ("w", 3, 2)))
    assert _journal_of(store, "w") == [(1, "started", None), (2, "task_scheduled", 1), (3, "task_completed", 1)]
    (run,) = store.archive("w")
    assert (run.instance_id, run.run, run.archived_at) == ("w", 1, 2000.0)
    assert [(e.seq, e.type, e.position, e.name) for e in run.entries] == [
        (4, Entry.TASK_SCHEDULED, 2, "Ship"), (5, Entry.TASK_FAILED, 2, "Ship"), (6, Entry.ERROR, 2, "ValueError"),
    ]
    assert {t.id: t.status for t in store.tasks_of("w")} == {
        "t1": TaskStatus.DONE, "t2": TaskStatus.CANCELLED, "t3": TaskStatus.CANCELLED,
    }
    assert [(t.instance_id, t.position) for t in store.due_timers(1e12, 10)] == [("w", 1), ("other", 2)]
    assert store.get_instance("late").parent_position is None  # type: ignore[union-attr]
    assert store.get_instance("early").parent_position == 1  # type: ignore[union-attr]
    assert store.get_instance("w").status is InstanceStatus.RUNNING  # type: ignore[union-attr]
    assert _journal_of(store, "other") == [(1, "started", None), (2, "paused", None)] and store.archive("other") == []

    apply_calls(store, ("append", (NewEntry("w", Entry.REWOUND),)), ("append", (NewEntry("w", Entry.TASK_SCHEDULED, 2, "Ship"),)))
    assert [e.seq for e in store.journal("w")] == [1, 2, 3, 4, 5]
    assert [e.seq for e in store.journal("w", after_seq=3)] == [4, 5]
    apply_calls(store, ("rewind", ("w", 1, 1)))  # a second rewind: run 2, with the seqs it had
    assert [(r.run, [e.seq for e in r.entries]) for r in store.archive("w")] == [(1, [4, 5, 6]), (2, [2, 3, 4, 5])]
    assert _journal_of(store, "w") == [(1, "started", None)]
    assert store.archive("w")[1].entries[2].type is Entry.REWOUND


def test_rewind_within_a_batch_archives_what_the_batch_appended_before_it(store: Store) -> None:
    _rewind_fixture(store)
    apply_calls(
        store,
        ("append", (NewEntry("w", Entry.EVENT_RECEIVED, None, "Ping"),)),  # seq 7
        ("rewind", ("w", 3, 2)),
        ("append", (NewEntry("w", Entry.REWOUND),)),  # seq 4 again
        ("append", (NewEntry("other", Entry.RESUMED),)),
    )
    assert _journal_of(store, "w")[-1] == (4, "rewound", None)
    assert [e.seq for e in store.archive("w")[0].entries] == [4, 5, 6, 7]
    assert store.archive("w")[0].entries[-1].name == "Ping"
    assert [e.seq for e in store.journal("other")] == [1, 2, 3]


def test_rewind_is_rolled_back_with_its_batch(store: Store) -> None:
    _rewind_fixture(store)
    ids = ["w", "late", "early", "other"]
    before = snapshot(store, ids)
    batch = Batch()
    batch.rewind("w", 3, 2)
    batch.append(NewEntry("w", Entry.REWOUND))
    batch.update_task("no-such-task")
    with pytest.raises(NotFoundError):
        apply(store, batch)
    assert snapshot(store, ids) == before
    assert store.archive("w") == []
    with pytest.raises(NotFoundError):
        apply_calls(store, ("rewind", ("ghost", 0, 1)))


def test_sqlite_migrates_a_version_2_store_to_the_archive(tmp_path: Any) -> None:
    from zenaton_runtime.store import schema

    path = tmp_path / "z.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in schema._BOOTSTRAP + [s for migration in schema.MIGRATIONS[:2] for s in migration]:
        conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = 2")
    conn.close()
    s = SQLiteStore(path)
    assert s._conn.execute("SELECT version FROM schema_version").fetchone()[0] == LATEST >= 3
    create(s, "w")
    apply_calls(s, ("append", (NewEntry("w", Entry.PAUSED),)), ("rewind", ("w", 1, 1)))
    assert [r.run for r in s.archive("w")] == [1]
    s.close()


# -- daemons' records -----------------------------------------------------------


def daemon(id: str, *, heartbeat_at: float = 1000.0, steps: int = 0, host: str = "box") -> DaemonRecord:
    return DaemonRecord(
        id=id, host=host, pid=4242, env="dev", version="0.1.0", started_at=990.0, heartbeat_at=heartbeat_at,
        workers=8, busy_workers=3, instances_held=12, queue_depth=5, steps=steps, steps_per_second=2.5,
        stats='{"steps": 0}',
    )


def test_daemon_records_heartbeat_list_and_remove(store: Store) -> None:
    assert store.daemons() == []
    changes = store.changes()
    store.heartbeat(daemon("d1", heartbeat_at=1000.0))
    store.heartbeat(daemon("d2", heartbeat_at=1001.0))
    assert [d.id for d in store.daemons()] == ["d2", "d1"]  # latest heartbeat first
    store.heartbeat(daemon("d1", heartbeat_at=1002.0, steps=40))  # the same id: replaced
    assert store.daemons() == [daemon("d1", heartbeat_at=1002.0, steps=40), daemon("d2", heartbeat_at=1001.0)]
    assert store.changes() == changes  # a heartbeat makes no work: the engine's lookout is not woken
    assert store.remove_daemon("d1") is True
    assert store.remove_daemon("d1") is False
    assert [d.id for d in store.daemons()] == ["d2"]
    assert store.changes() == changes


def test_a_daemon_record_is_alive_until_its_heartbeat_is_stale() -> None:
    record = daemon("d", heartbeat_at=1000.0)
    assert record.alive(1000.0) and record.alive(1010.0)
    assert not record.alive(1010.5)


def test_daemon_records_are_not_part_of_a_step(store: Store) -> None:
    create(store, "w")
    store.heartbeat(daemon("d1"))
    batch = _status_batch("w", InstanceStatus.PAUSED)
    batch.update_instance("ghost")  # fails the step: rolled back whole
    with pytest.raises(NotFoundError):
        apply(store, batch)
    assert [d.id for d in store.daemons()] == ["d1"]
    assert store.get_instance("w").status is InstanceStatus.RUNNING  # type: ignore[union-attr]


def test_queue_depth_counts_the_claimable_queued_tasks(store: Store, clock: Clock) -> None:
    assert store.queue_depth(clock.t) == 0
    create(store, "a", kind=Kind.TASK, with_task=task("t1", "a", run_at=10.0))
    create(store, "b", kind=Kind.TASK, with_task=task("t2", "b", run_at=5000.0))  # not due yet
    create(store, "c", kind=Kind.TASK, with_task=task("t3", "c", run_at=10.0))
    create(store, "p", kind=Kind.TASK, with_task=task("t4", "p", run_at=10.0))
    apply(store, _status_batch("p", InstanceStatus.PAUSED))  # a paused instance's task is not claimable
    assert store.queue_depth(clock.t) == 2
    assert store.queue_depth(6000.0) == 3
    claim_tasks(store, clock.t, 1)
    assert store.queue_depth(clock.t) == 1


def test_sqlite_heartbeat_waits_for_the_step_committing_in_the_background(tmp_path: Any) -> None:
    s = SQLiteStore(tmp_path / "z.db")
    try:
        create(s, "w", with_task=task("t1", "w"))
        batch = _status_batch("w", InstanceStatus.RUNNING)
        batch.append(NewEntry("w", Entry.PAUSED))
        pending = s.commit_step(batch, 1000.0, 1, background=True)
        s.heartbeat(daemon("d1"))  # lands the step first, then writes on its own
        assert pending.landed and [t.id for t in pending.wait()] == ["t1"]
        assert [d.id for d in s.daemons()] == ["d1"]
        assert [e.type for e in s.journal("w")] == [Entry.STARTED, Entry.PAUSED]
        other = SQLiteStore(tmp_path / "z.db")  # another process (a dashboard) reads it
        assert other.daemons() == [daemon("d1")]
        other.close()
    finally:
        s.close()


def test_sqlite_migrates_a_version_5_store_to_the_daemons_table(tmp_path: Any) -> None:
    from zenaton_runtime.store import schema

    path = tmp_path / "z.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in schema._BOOTSTRAP + [s for migration in schema.MIGRATIONS[:5] for s in migration]:
        conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = 5")
    conn.close()
    s = SQLiteStore(path)
    assert s._conn.execute("SELECT version FROM schema_version").fetchone()[0] == LATEST >= 6
    create(s, "w")
    s.heartbeat(daemon("d1"))
    assert [d.id for d in s.daemons()] == ["d1"]
    assert s.instance_counts() == [("workflow", "Order", "running", 1)]
    s.close()

"""Several daemons on one PostgreSQL database, at the store: leases, claims, fencing, release.

Each "daemon" here is a PostgresStore holding a lease. A lease running out is made by setting its
``until`` in the past (what the database's clock would do after ``lease_ttl`` seconds)."""
from __future__ import annotations

import select
import threading
import time
from typing import Any, Iterator

import psycopg
import pytest

from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.store_helpers import apply
from tests.test_store_contract import create, daemon, instance, started, task
from zenaton_runtime.errors import LeaseLost, StoreError
from zenaton_runtime.models import Entry, InboxKind, InstanceStatus, TaskStatus, Timer
from zenaton_runtime.store import Batch, NewEntry
from zenaton_runtime.store.postgres import PostgresStore
from zenaton_runtime.store.postgres_leases import FOLLOWER_DELAY
from zenaton_runtime.store.postgres_schema import DAEMON_LOCK

TTL = 60.0


@pytest.fixture
def stores(pg_clean_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[PostgresStore]]:
    """A client's store (no lease) and two daemons' (leases "A" and "B"), which look for expired
    leases at every claim (a daemon does once a second)."""
    monkeypatch.setattr("zenaton_runtime.store.postgres_leases.LEASES_LOOK", 0.0)
    opened = [PostgresStore(pg_clean_url) for _ in range(3)]
    try:
        opened[1].take_lease("A", TTL)
        opened[2].take_lease("B", TTL)
        yield opened
    finally:
        for s in opened:
            s.close()


def sql(url: str, statement: str, params: Any = ()) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = zenaton")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def expire(url: str, lease: str) -> None:
    sql(url, "UPDATE leases SET until = 0 WHERE id = %s", (lease,))


def owners(url: str) -> dict[str, tuple[str | None, int]]:
    return {r[0]: (r[1], r[2]) for r in sql(url, "SELECT id, owner, epoch FROM instances")}


def step(store: PostgresStore, instance_id: str, *, now: float = 1e9, limit: int = 0) -> list[Any]:
    """A step that appends to ``instance_id`` as its owner would, and claims up to ``limit`` tasks."""
    batch = Batch()
    batch.append(NewEntry(instance_id, Entry.EVENT_RECEIVED, name="Ping", data="{}"))
    return store.commit_step(batch, now, limit).wait()


def test_two_daemons_claiming_at_once_split_the_instances(stores: list[PostgresStore], pg_clean_url: str) -> None:
    client, a, b = stores
    for n in range(60):
        create(client, f"w{n:02}")
    taken: dict[str, list[str]] = {"A": [], "B": []}
    start = threading.Barrier(2)

    def claim_all(store: PostgresStore, lease: str) -> None:
        start.wait()
        while ids := store.claim_instances(7).ids:
            taken[lease] += ids

    threads = [threading.Thread(target=claim_all, args=(s, n)) for s, n in ((a, "A"), (b, "B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(taken["A"]) & set(taken["B"])
    assert sorted(taken["A"] + taken["B"]) == [f"w{n:02}" for n in range(60)]
    assert taken["A"] and taken["B"]
    held = owners(pg_clean_url)
    assert {i: o for i, (o, _) in held.items()} == {i: lease for lease, ids in taken.items() for i in ids}
    assert {epoch for _, epoch in held.values()} == {1}
    assert client.claim_instances(10).ids == []  # a store without a lease claims nothing


def test_a_daemon_reads_and_runs_only_what_it_owns(stores: list[PostgresStore]) -> None:
    client, a, b = stores
    create(client, "wa", with_task=task("ta", "wa"))
    create(client, "wb", with_task=task("tb", "wb"))
    assert a.claim_instances(1).ids == ["wa"] and b.claim_instances(1).ids == ["wb"]
    apply(client, _timer("wa", 5.0))
    apply(client, _timer("wb", 6.0))
    assert a.ready_instances(10) == ["wa"] and b.ready_instances(10) == ["wb"]
    assert client.ready_instances(10) == ["wa", "wb"]
    assert [t.instance_id for t in a.due_timers(10.0, 10)] == ["wa"]
    assert [t.instance_id for t in b.due_timers(10.0, 10)] == ["wb"]
    assert a.next_due(1.0) == 5.0 and b.next_due(1.0) == 6.0
    assert [t.id for t in a.commit_step(Batch(), 1e9, 10).wait()] == ["ta"]
    assert [t.id for t in b.commit_step(Batch(), 1e9, 10).wait()] == ["tb"]


def test_an_expired_owners_instances_are_taken_over_with_their_tasks_in_flight_queued_again(
    stores: list[PostgresStore], pg_clean_url: str
) -> None:
    client, a, b = stores
    create(client, "w", with_task=task("running", "w"))
    apply(client, _tasks(task("done", "w", status=TaskStatus.DONE), task("queued", "w", run_at=1e12)))
    assert a.claim_instances(5).ids == ["w"]
    assert [t.id for t in a.commit_step(Batch(), 1e9, 5).wait()] == ["running"]  # attempts 1
    assert b.claim_instances(5).ids == []  # A's lease holds
    journal = client.journal("w")

    expire(pg_clean_url, "A")
    assert b.claim_instances(5) == (["w"], 1, 1)
    assert owners(pg_clean_url) == {"w": ("B", 2)}
    assert {(t.id, t.status, t.attempts) for t in client.tasks_of("w")} == {
        ("running", TaskStatus.QUEUED, 1), ("done", TaskStatus.DONE, 0), ("queued", TaskStatus.QUEUED, 0)}
    assert sql(pg_clean_url, "SELECT id FROM leases") == [("B",)]  # A's, drained, is gone

    with pytest.raises(LeaseLost) as lost:  # A wakes up and writes: refused whole
        batch = Batch()
        batch.append(NewEntry("w", Entry.EVENT_RECEIVED, name="Late", data="{}"))
        batch.update_instance("w", properties='{"late": true}')
        batch.post("w", InboxKind.EVENT, "Also", "{}")
        a.commit_step(batch, 1e9, 5)
    assert lost.value.instance_ids == ["w"] and isinstance(lost.value, StoreError)
    assert client.journal("w") == journal
    assert client.inbox("w") == [] and client.get_instance("w").properties is None  # type: ignore[union-attr]
    assert {t.id: t.status for t in client.tasks_of("w")}["running"] is TaskStatus.QUEUED
    assert a.claim_instances(5).ids == [] and a.commit_step(Batch(), 1e9, 5).wait() == []
    assert not a.renew_lease()
    assert [t.id for t in b.commit_step(Batch(), 1e9, 5).wait()] == ["running"]
    assert {t.id: t.attempts for t in client.tasks_of("w")}["running"] == 2
    step(b, "w")  # the new owner writes


def test_a_task_update_of_a_lost_instance_is_refused_too(stores: list[PostgresStore], pg_clean_url: str) -> None:
    client, a, b = stores
    create(client, "w", with_task=task("t", "w"))
    a.claim_instances(1).ids
    a.commit_step(Batch(), 1e9, 1).wait()
    expire(pg_clean_url, "A")
    b.claim_instances(1).ids
    batch = Batch()
    batch.update_task("t", status=TaskStatus.DONE)
    with pytest.raises(LeaseLost, match="1 instance"):
        a.commit_step(batch, 1e9, 0)
    assert client.tasks_of("w")[0].status is TaskStatus.QUEUED


def test_a_step_claims_the_tasks_it_adds_as_written_but_not_those_of_the_instances_it_creates(
    stores: list[PostgresStore],
) -> None:
    client, a, _ = stores
    create(client, "wa")
    assert a.claim_instances(1).ids == ["wa"]
    batch = Batch()
    batch.add_task(task("ta", "wa"))
    batch.create_instance(instance("child", parent_id="wa"), started("child"), task("tc", "child"))
    claimed = a.commit_step(batch, 1e9, 10, only_added=True).wait()
    assert [(t.id, t.status, t.attempts) for t in claimed] == [("ta", TaskStatus.RUNNING, 1)]
    # the child is nobody's yet: its task waits for the daemon that claims it
    assert sql(client.url, "SELECT id, status, attempts FROM tasks ORDER BY id") == [("ta", "running", 1), ("tc", "queued", 0)]
    assert owners(client.url)["child"] == (None, 0)


def test_a_step_may_post_to_another_daemons_instance_and_wakes_it(stores: list[PostgresStore]) -> None:
    client, a, b = stores
    create(client, "parent")
    create(client, "child")
    assert a.claim_instances(1).ids == ["parent"] and b.claim_instances(1).ids == ["child"]
    a.commit_step(Batch(), 1e9, 0)  # settles A's listening
    seen = a.changes()
    batch = Batch()
    batch.append(NewEntry("child", Entry.COMPLETED, data="{}"))
    batch.update_instance("child", status=InstanceStatus.COMPLETED)
    batch.post("parent", InboxKind.CHILD_COMPLETED, None, "{}")
    b.commit_step(batch, 1e9, 0)
    _eventually(lambda: a.changes() != seen, "the parent's owner notified")
    assert a.ready_instances(5) == ["parent"] and b.ready_instances(5) == []
    assert sql(client.url, "SELECT owner FROM instances WHERE id = 'child'") == [(None,)]  # finished: no owner


def test_a_finished_instance_with_a_request_is_claimable(stores: list[PostgresStore]) -> None:
    client, a, b = stores
    create(client, "w")
    a.claim_instances(1).ids
    batch = Batch()
    batch.consume_inbox("w", [])  # its start decided: no longer ready
    batch.append(NewEntry("w", Entry.ERROR, data="{}"))
    batch.update_instance("w", status=InstanceStatus.FAILED)
    a.commit_step(batch, 1e9, 0)
    assert a.claim_instances(5).ids == [] and b.claim_instances(5).ids == []
    client.post("w", InboxKind.RETRY)
    assert b.claim_instances(5).ids == ["w"]
    assert b.ready_instances(5) == ["w"] and a.ready_instances(5) == []


def test_release_lets_go_at_once_and_a_removed_record_ends_its_lease(stores: list[PostgresStore], pg_clean_url: str) -> None:
    client, a, b = stores
    create(client, "w1", with_task=task("t1", "w1"))
    create(client, "w2")
    assert a.claim_instances(5).ids == ["w1", "w2"]
    a.commit_step(Batch(), 1e9, 5)
    b.changes()
    seen = b.changes()
    assert a.release() == 1
    assert client.tasks_of("w1")[0].status is TaskStatus.QUEUED
    assert set(owners(pg_clean_url).values()) == {(None, 1)}
    assert sql(pg_clean_url, "SELECT id FROM leases") == [("B",)]
    _eventually(lambda: b.changes() != seen, "the others notified")
    assert b.claim_instances(5).ids == ["w1", "w2"]

    a.take_lease("A2", TTL)
    create(client, "w3")
    assert a.claim_instances(5).ids == ["w3"]
    client.heartbeat(daemon("A2"))
    assert client.remove_daemon("A2")  # a dead daemon's record removed: its lease ends with it
    assert b.claim_instances(5).ids == ["w3"]
    assert not a.renew_lease()


def test_daemons_share_the_database_lock_which_migrate_takes_alone(pg_clean_url: str) -> None:
    first, second = PostgresStore(pg_clean_url), PostgresStore(pg_clean_url)
    try:
        first.take_lease("one", TTL)
        second.take_lease("two", TTL)  # any number of daemons
        with psycopg.connect(pg_clean_url, autocommit=True) as migrate:
            assert migrate.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK,)).fetchone() == (False,)
            first.release()
            second.release()
            assert migrate.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK,)).fetchone() == (True,)
            third = PostgresStore(pg_clean_url)
            try:
                import zenaton_runtime.store.postgres as postgres

                patience, postgres.DAEMON_LOCK_PATIENCE = postgres.DAEMON_LOCK_PATIENCE, 0.2
                try:
                    with pytest.raises(StoreError, match="locked by `zenaton migrate`"):
                        third.take_lease("three", TTL)
                finally:
                    postgres.DAEMON_LOCK_PATIENCE = patience
            finally:
                third.close()
    finally:
        first.close()
        second.close()


def test_renewing_extends_the_lease_on_the_databases_clock(stores: list[PostgresStore], pg_clean_url: str) -> None:
    _, a, _ = stores
    (before,) = sql(pg_clean_url, "SELECT until - extract(epoch FROM clock_timestamp()) FROM leases WHERE id = 'A'")[0]
    assert TTL - 5 < before <= TTL
    sql(pg_clean_url, "UPDATE leases SET until = until - 30 WHERE id = 'A'")
    assert a.renew_lease()
    (after,) = sql(pg_clean_url, "SELECT until - extract(epoch FROM clock_timestamp()) FROM leases WHERE id = 'A'")[0]
    assert after > TTL - 5


def _timer(instance_id: str, fire_at: float) -> Batch:
    batch = Batch()
    batch.add_timer(Timer(instance_id, 1, fire_at))
    return batch


def _tasks(*tasks: Any) -> Batch:
    batch = Batch()
    for t in tasks:
        batch.add_task(t)
    return batch


def _eventually(condition: Any, what: str) -> None:
    from tests.test_postgres_store import eventually

    eventually(condition, what)


def test_the_session_of_an_expired_lease_is_ended_so_its_row_locks_go(
    stores: list[PostgresStore], pg_clean_url: str
) -> None:
    client, a, b = stores
    create(client, "w")
    assert a.claim_instances(1).ids == ["w"]
    a._conn.execute("BEGIN")  # A froze in the middle of a step: it holds the row lock of its instance
    a._conn.execute("SELECT 1 FROM instances WHERE id = 'w' FOR UPDATE")
    expire(pg_clean_url, "A")
    # B's claim ends A's session (its transaction rolls back, its lock goes) and takes w, at once
    # or at its next look
    _eventually(lambda: b.claim_instances(1).ids == ["w"], "the takeover once A's session is gone")
    assert owners(pg_clean_url) == {"w": ("B", 2)}
    with pytest.raises(LeaseLost):  # A wakes up on a new session: its step is refused
        step(a, "w")


def test_between_two_looks_at_the_leases_a_claim_takes_the_unowned_alone(
    stores: list[PostgresStore], pg_clean_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import zenaton_runtime.store.postgres_leases as leases

    clock = [100.0]
    monkeypatch.setattr(leases, "LEASES_LOOK", 1.0)
    monkeypatch.setattr(leases, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    client, a, b = stores
    create(client, "w1")
    assert a.claim_instances(5).ids == ["w1"]
    assert b.claim_instances(5).ids == []  # its look at the leases: none expired
    expire(pg_clean_url, "A")
    create(client, "w2")
    clock[0] = 100.5
    assert b.claim_instances(5) == (["w2"], 0, 0)  # one statement: the unowned only
    assert a.claim_instances(5).ids == []  # A's lease ran out: it takes nothing, even unowned
    create(client, "w3")
    clock[0] = 101.0
    assert b.claim_instances(5) == (["w1", "w3"], 1, 0)  # its next look: A's instance taken over


def test_new_work_goes_to_the_first_daemon_and_the_others_take_what_it_leaves(
    stores: list[PostgresStore],
) -> None:
    client, a, b = stores
    for store in (a, b):
        store.claim_instances(5)  # each looks at the leases: "A" is the first of those alive
    assert a.look_delay(a.changes()) == 0.0 and b.look_delay(b.changes()) == FOLLOWER_DELAY
    now = time.time()
    b.now = lambda: now  # B's clock stands still: the instance stays as young as it was made
    create(client, "fresh", created_at=now)
    assert b.claim_instances(5).ids == []  # too new for a daemon after the first
    b.now = lambda: now + FOLLOWER_DELAY  # the first left it that long: B takes it
    assert b.claim_instances(5).ids == ["fresh"]
    create(client, "next", created_at=now + 60)  # newer than B's clock will say for a minute
    a.release()  # the first stops: at its next look at the leases, B is the first
    assert b.claim_instances(5).ids == ["next"] and b.look_delay(b.changes()) == 0.0
    assert client.look_delay(client.changes()) == 0.0  # a client's store holds no lease


def test_a_daemon_after_the_first_takes_an_expired_leases_instances_however_new(
    stores: list[PostgresStore], pg_clean_url: str
) -> None:
    client, a, b = stores
    for store in (a, b):
        store.claim_instances(5)
    create(client, "young", created_at=time.time() + 60)
    assert a.claim_instances(5).ids == ["young"]
    expire(pg_clean_url, "A")  # A is gone: its instances go to whoever looks, at once
    taken = b.claim_instances(5)
    assert taken.ids == ["young"] and taken.taken_over == 1


def test_a_daemon_after_the_first_looks_again_once_what_it_heard_of_is_old_enough(
    stores: list[PostgresStore],
) -> None:
    client, a, b = stores
    for store in (a, b):
        store.claim_instances(5)
    now = time.time()
    b.now = lambda: now
    news(b, lambda: create(client, "fresh", created_at=now), 1)
    assert b.claim_instances(5).ids == []  # too young
    # whatever the first does meanwhile (it may be stopping, or frozen), B looks again then:
    assert b.next_due(now) == now + FOLLOWER_DELAY
    assert b.next_due(now + FOLLOWER_DELAY) is None  # that look was made: nothing more to wait for
    assert a.next_due(now) is None  # the first looks at once, never later


def test_a_daemon_after_the_first_looks_at_once_at_news_of_its_own_instances(stores: list[PostgresStore]) -> None:
    client, a, b = stores
    for store in (a, b):
        store.claim_instances(5)
    create(client, "theirs")
    create(client, "mine")
    assert a.claim_instances(1).ids == ["theirs"]
    assert b.claim_instances(1).ids == ["mine"]
    seen = news(b, lambda: client.create_instance(instance("other"), started("other")), 1)
    assert b.look_delay(seen) == FOLLOWER_DELAY  # new work: B may let it wait for the first
    seen = news(b, lambda: client.post("theirs", InboxKind.EVENT, "Ping", "{}"), 2)
    assert b.look_delay(seen) == FOLLOWER_DELAY  # A's instance (named for A): B may let it wait too
    seen = news(b, lambda: client.post("mine", InboxKind.EVENT, "Ping", "{}"), 2)
    assert b.look_delay(seen) == 0.0  # B's own: it looks at once
    assert a.look_delay(a.changes()) == 0.0  # the first looks at once at everything


def news(store: PostgresStore, write: Any, count: int) -> object:
    """``write``, then wait on the store's socket until its ``count`` notifications arrived (they
    travel on their own, after the commit); what ``changes()`` said before them."""
    seen = store.changes()
    fd = store.wakeup_fd()
    write()
    deadline = time.monotonic() + 10
    while store.changes()[0] < seen[0] + count:  # type: ignore[index]
        assert time.monotonic() < deadline, f"fewer than {count} notification(s) within 10 s"
        select.select([fd], [], [], 1.0)
    return seen


def test_a_daemon_re_queues_only_its_own_running_tasks_but_those_it_keeps(stores: list[PostgresStore]) -> None:
    """After a step whose COMMIT may have landed unheard (``Engine._settle_doubt``)."""
    client, a, b = stores
    create(client, "wa", with_task=task("ta", "wa"))
    create(client, "wa2", with_task=task("ta2", "wa2"))
    create(client, "wb", with_task=task("tb", "wb"))
    assert a.claim_instances(2).ids == ["wa", "wa2"] and b.claim_instances(1).ids == ["wb"]
    assert sorted(t.id for t in a.commit_step(Batch(), 1e9, 10).wait()) == ["ta", "ta2"]
    assert [t.id for t in b.commit_step(Batch(), 1e9, 10).wait()] == ["tb"]
    assert a.recover(keep={"ta2"}) == 1  # its own "ta"; not B's "tb", not the "ta2" it keeps
    status = {t.id: t.status for i in ("wa", "wa2", "wb") for t in client.tasks_of(i)}
    assert status == {"ta": TaskStatus.QUEUED, "ta2": TaskStatus.RUNNING, "tb": TaskStatus.RUNNING}

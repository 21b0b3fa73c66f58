"""What only the PostgreSQL store has to show, on a real server: its schema and migrations, its
connection and its refusals, roles and grants, LISTEN/NOTIFY behind changes(), the claim shared
by several connections, the daemon lock, and the row lock that keeps an inbox item's ready flag.
The behaviour every backend shares is judged by tests/test_store_contract.py."""
from __future__ import annotations

import math
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import psycopg
import pytest
from flowlib.workflows import Sequential  # type: ignore[import-not-found]

from tests.harness import Harness
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.store_helpers import apply, claim_tasks
from tests.test_lookout import CountingStore
from tests.test_store_contract import create, daemon, instance, started, task
from zenaton_runtime.client.control import Control
from zenaton_runtime.errors import ConfigError, DuplicateInstanceError, NotFoundError, StoreError
from zenaton_runtime.models import Entry, InstanceStatus, Kind, Schedule, TaskStatus
from zenaton_runtime.store import Batch, NewEntry, open_store, redacted
from zenaton_runtime.store.postgres import PostgresStore, describe
from zenaton_runtime.store.postgres_schema import LATEST, MIGRATIONS, SCHEMA, migrate


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url)
    yield s
    s.close()


def admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def eventually(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """A notification travels on its own: it may land a moment after the commit returned."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.005)


# -- schema and migrations ------------------------------------------------------------------


def test_the_tables_live_in_the_zenaton_schema_at_the_latest_version(store: PostgresStore, pg_url: str) -> None:
    create(store, "w")
    with admin(pg_url) as conn:
        assert conn.execute("SELECT id, version FROM zenaton.schema_version").fetchall() == [(1, LATEST)]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (SCHEMA,))}
        assert tables == {
            "schema_version", "instances", "journal", "journal_archive", "tasks", "timers", "inbox", "schedules",
            "daemons", "leases",
        }
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'zenaton' AND table_name = 'instances'"
        ).fetchall())
        assert types["created_at"] == types["updated_at"] == "double precision"


def test_migrations_are_idempotent(store: PostgresStore) -> None:
    create(store, "w")
    assert migrate(store._conn) == LATEST
    assert migrate(store._conn) == LATEST
    assert store._conn.execute("SELECT * FROM zenaton.schema_version").fetchall() == [(1, LATEST)]
    assert store.get_instance("w") is not None


def test_stores_opening_a_new_database_at_once_migrate_it_once(pg_url: str) -> None:
    """Each migration runs under pg_advisory_xact_lock: the others wait, then find it done."""
    barrier = threading.Barrier(6)
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            barrier.wait()
            opened.append(PostgresStore(pg_url))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and len(opened) == 6
        create(opened[0], "w")
        assert [s.get_instance("w") is not None for s in opened] == [True] * 6
        with admin(pg_url) as conn:
            assert conn.execute("SELECT version FROM zenaton.schema_version").fetchall() == [(LATEST,)]
    finally:
        for s in opened:
            s.close()


def test_a_store_at_an_older_version_is_migrated(pg_url: str) -> None:
    """Migration n runs on a database at version n - 1 (here the bootstrap alone: version 0)."""
    with admin(pg_url) as conn:
        conn.execute("CREATE SCHEMA zenaton")
        conn.execute("CREATE TABLE zenaton.schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        conn.execute("INSERT INTO zenaton.schema_version VALUES (1, 0)")
    s = PostgresStore(pg_url)
    try:
        assert s._conn.execute("SELECT version FROM zenaton.schema_version").fetchone() == (LATEST,)
        create(s, "w")
    finally:
        s.close()
    assert len(MIGRATIONS) == LATEST


def test_the_reopened_store_keeps_everything(pg_url: str) -> None:
    s = PostgresStore(pg_url)
    create(s, "w", custom_id="c")
    s.post("w", "event")
    batch = Batch()
    batch.append(NewEntry("w", Entry.PAUSED))
    apply(s, batch)
    s.close()
    s = PostgresStore(pg_url)
    try:
        assert s.get_instance("w") == instance("w", custom_id="c")
        assert len(s.inbox("w")) == 1 and s.ready_instances(5) == ["w"]
        with pytest.raises(DuplicateInstanceError):
            create(s, "w2", custom_id="c")
        assert [e.seq for e in s.journal("w")] == [1, 2]
    finally:
        s.close()


def test_an_application_s_own_tables_are_left_alone(pg_url: str) -> None:
    with admin(pg_url) as conn:
        conn.execute("CREATE TABLE public.instances (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.instances (note) VALUES ('mine')")
    s = PostgresStore(pg_url)
    try:
        create(s, "w")
        assert [i.id for i in s.list_instances()] == ["w"]
    finally:
        s.close()
    with admin(pg_url) as conn:
        assert conn.execute("SELECT note FROM public.instances").fetchall() == [("mine",)]


def test_a_zenaton_schema_of_another_application_is_refused(pg_url: str) -> None:
    with admin(pg_url) as conn:
        conn.execute("CREATE SCHEMA zenaton")
        conn.execute("CREATE TABLE zenaton.users (id serial PRIMARY KEY)")
    with pytest.raises(StoreError, match="another application.*users.*refusing"):
        PostgresStore(pg_url)
    with admin(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('zenaton.schema_version')").fetchone() == (None,)


def test_a_newer_schema_is_refused(store: PostgresStore, pg_url: str) -> None:
    with admin(pg_url) as conn:
        conn.execute("UPDATE zenaton.schema_version SET version = %s", (LATEST + 1,))
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1}, newer than this zenaton.*upgrade zenaton"):
        PostgresStore(pg_url)


# -- connection ------------------------------------------------------------------------------


def test_durability_sets_synchronous_commit(pg_clean_url: str) -> None:
    full, fast = PostgresStore(pg_clean_url), PostgresStore(pg_clean_url, durability="fast")
    try:
        assert full._conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert fast._conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    finally:
        full.close()
        fast.close()
    with pytest.raises(ConfigError, match="durability"):
        PostgresStore(pg_clean_url, durability="sometimes")


def test_a_step_s_lookups_by_id_use_the_index_on_a_table_of_a_few_thousand_rows(pg_clean_url: str) -> None:
    """PostgreSQL's default page costs (spinning disks) make a scan of a small table look cheaper
    than a dozen index probes: the step's reads by id would read every instance (ten times the
    time at 3,000 rows). The store's sessions plan as for data in memory or on SSD."""
    store = PostgresStore(pg_clean_url)
    try:
        store._conn.execute(
            "INSERT INTO instances (id, kind, name, env, status, data, created_at, updated_at)"
            " SELECT md5(g::text), 'workflow', 'Order', 'dev', 'running', '{}', g, g FROM generate_series(1, 3000) g"
        )
        ids = [f"{n}" for n in range(10)]
        for sql in (
            "SELECT id, last_seq FROM instances WHERE id = ANY(%s)",
            "SELECT id, last_seq FROM instances WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        ):
            plan = "\n".join(row[0] for row in store._conn.execute("EXPLAIN " + sql, (ids,)).fetchall())
            assert "instances_id_key" in plan and "Seq Scan" not in plan, plan
    finally:
        store.close()


def test_open_store_knows_both_url_schemes(pg_clean_url: str) -> None:
    for url in (pg_clean_url, pg_clean_url.replace("postgresql://", "postgres://", 1)):
        s = open_store(url)
        try:
            assert isinstance(s, PostgresStore)
            create(s, f"w{uuid.uuid4().hex[:6]}")
        finally:
            s.close()


def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started_at = time.monotonic()
    with pytest.raises(StoreError) as error:
        open_store(f"postgresql://zen:secret@127.0.0.1:{port}/shop")
    message = str(error.value)
    assert message.startswith(f"cannot connect to the PostgreSQL store at 127.0.0.1:{port}/shop: ")
    assert "secret" not in message and "\n" not in message
    assert time.monotonic() - started_at < 10


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid PostgreSQL store url: invalid URI query parameter"):
        open_store("postgresql://user@host/db?colour=blue")
    with pytest.raises(ConfigError, match="invalid PostgreSQL store url") as error:
        open_store("postgresql://zen:secret@[::1/db")
    assert "secret" not in str(error.value)


def test_without_the_extra_open_store_says_how_to_install_it(tmp_path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from zenaton_runtime.errors import ConfigError\n"
        "from zenaton_runtime.store import open_store\n"
        "try:\n    open_store('postgresql://u@localhost/db')\n"
        "except ConfigError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout == 'the PostgreSQL store needs its extra: pip install "zenaton[postgres]"\n', result.stderr


def test_passwords_are_redacted_for_display() -> None:
    assert redacted("postgresql://zen:s3cr%40t@db.example:5432/shop") == "postgresql://zen:***@db.example:5432/shop"
    assert redacted("postgresql://zen@db/shop?password=x&sslmode=require") == (
        "postgresql://zen@db/shop?password=***&sslmode=require"
    )
    assert redacted("postgresql://db/shop") == "postgresql://db/shop"
    assert redacted("sqlite:///tmp/a:b@c.db") == "sqlite:///tmp/a:b@c.db"
    assert describe("postgresql://zen:pw@db.example:6543/shop") == "db.example:6543/shop"


def test_a_lost_connection_is_opened_again(pg_clean_url: str) -> None:
    s = PostgresStore(pg_clean_url)
    try:
        create(s, "w")
        changes = s.changes()
        with admin(pg_clean_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (s._conn.info.backend_pid,))
        assert s.get_instance("w") is not None  # the read is tried once more, on a new connection
        assert s.changes() != changes  # what the lost connection might have missed counts as a change
        create(s, "v")
        assert len(s.list_instances()) == 2

        # a write on a session the server ended fails at its BEGIN, before anything is written:
        # it is tried again on a new connection, and succeeds
        pid = s._conn.info.backend_pid
        with admin(pg_clean_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            eventually(lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall(),
                       "the session ended")
        create(s, "x")
        assert s._conn.info.backend_pid != pid and len(s.list_instances()) == 3

        # a step's BEGIN travels with its row locks: a session lost there wrote nothing either,
        # and the step is tried again on a new connection
        pid = s._conn.info.backend_pid
        with admin(pg_clean_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            eventually(lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall(),
                       "the session ended")
        batch = Batch()
        batch.append(NewEntry("x", Entry.PAUSED))
        batch.add_task(task("t-x", "x"))
        assert [t.id for t in s.commit_step(batch, 1e9, 5).wait()] == ["t-x"]
        assert s._conn.info.backend_pid != pid
        assert [e.type for e in s.journal("x")] == [Entry.STARTED, Entry.PAUSED]
    finally:
        s.close()


def test_a_dispatch_whose_begin_travels_with_its_rows_fails_whole_and_leaves_the_session_usable(
    store: PostgresStore,
) -> None:
    """Without a custom id, a dispatch's BEGIN, rows, NOTIFY go in one pipeline: an insert that
    fails there (an id met twice) leaves nothing of it, no transaction open, and the next works."""
    create(store, "w")
    with pytest.raises(StoreError, match="cannot insert"):
        store.create_instance(instance("w", name="Other"), started("w"), task("t-new", "w"))
    assert store._conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert store._conn.execute("SELECT count(*) FROM tasks WHERE id = 't-new'").fetchone() == (0,)
    assert [e.type for e in store.journal("w")] == [Entry.STARTED]
    create(store, "v")
    assert sorted(i.id for i in store.list_instances()) == ["v", "w"]
    assert store.get_instance("w").name == "Order"  # type: ignore[union-attr]


class CuttingProxy:
    """A TCP relay between a store and the server that cuts its connection, once armed, at the
    next bytes going ``"up"`` (to the server: they never arrive) or ``"down"`` (the server's
    answer to a pipeline, sent once it ran all of it, at its sync: what it ran stays run, the
    client never hears of it). Connections opened after the cut are relayed whole."""

    def __init__(self, server_url: str) -> None:
        address = server_url.split("@", 1)[1].split("/", 1)[0]
        host, port = address.rsplit(":", 1)
        self.server = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: str | None = None
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, server_url: str) -> str:
        user, rest = server_url.split("@", 1)
        database = rest.split("/", 1)[1]
        return f"{user}@127.0.0.1:{self.port}/{database}"

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.server)
            for source, target, direction in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._relay, args=(source, target, direction, client, upstream), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket, direction: str, *pair: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.armed == direction:
                    self.armed = None
                    self.cuts += 1
                    for sock in pair:
                        sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
                    return
                target.sendall(data)
        except OSError:
            pass


@pytest.mark.parametrize("where", ["up", "down"])
def test_a_dispatch_whose_session_is_lost_on_the_way_lands_once(pg_clean_url: str, where: str) -> None:
    """A dispatch is one round trip (BEGIN, rows, NOTIFY, COMMIT): a session lost on the way leaves
    its COMMIT in doubt. Cut before the server read it ("up"), or after the server ran it and
    before the client heard ("down"): either way the dispatch returns and its instance is there
    once, its journal whole."""
    proxy = CuttingProxy(pg_clean_url)
    s = PostgresStore(proxy.url(pg_clean_url))
    try:
        create(s, "first")
        proxy.armed = where
        create(s, "w")
        assert proxy.cuts == 1
        assert sorted(i.id for i in s.list_instances()) == ["first", "w"]
        assert [e.type for e in s.journal("w")] == [Entry.STARTED]
    finally:
        s.close()


def test_text_with_a_nul_character_names_nothing_and_is_refused_in_writes(store: PostgresStore) -> None:
    create(store, "w")
    assert store.get_instance("w\x00") is None
    assert store.list_instances(custom_id="\x00") == [] and store.journal("w\x00") == []
    assert store.get_instances(["w", "w\x00"]).keys() == {"w"}
    assert store.inboxes(["w\x00"]) == {"w\x00": []}
    with pytest.raises(NotFoundError):
        store.post("w\x00", "event")
    with pytest.raises(StoreError, match="NUL"):
        create(store, "v", custom_id="a\x00b")
    assert [i.id for i in store.list_instances()] == ["w"]


# -- roles -------------------------------------------------------------------------------------


def _role_url(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def test_a_client_role_with_the_documented_grants_works_and_cannot_migrate(pg_url: str) -> None:
    """docs/postgresql.md: the owner creates the tables; a client role gets USAGE on the schema,
    and SELECT, INSERT, UPDATE, DELETE on its tables."""
    role = f"zt_client_{uuid.uuid4().hex[:8]}"
    with admin(pg_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        with pytest.raises(StoreError, match="needs its tables created or migrated.*this role may not"):
            PostgresStore(_role_url(pg_url, role))
        PostgresStore(pg_url).close()  # the owner creates them
        with admin(pg_url) as conn:
            conn.execute(f"GRANT USAGE ON SCHEMA zenaton TO {role}")
            conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA zenaton TO {role}")
        client = PostgresStore(_role_url(pg_url, role))
        try:
            create(client, "w", custom_id="c", with_task=None)
            create(client, "k", kind=Kind.TASK, with_task=task("t", "k"))
            item = client.post("w", "event", "Ping", "{}")
            batch = Batch()
            batch.consume_inbox("w", [item])
            batch.append(NewEntry("w", Entry.PAUSED))
            batch.update_instance("w", status=InstanceStatus.PAUSED)
            apply(client, batch)
            assert [t.id for t in claim_tasks(client, 1e9, 5)] == ["t"]
            client.add_schedule(Schedule("s", "dev", Kind.WORKFLOW, "W", None, "{}", "* * * * *", "UTC", 5.0, None, 0, 0, None, 0.0))
            assert client.delete_schedule("s")
            client.heartbeat(daemon("d1"))
            assert client.remove_daemon("d1")
            assert client.recover() == 1
            assert client.changes() == client.changes()
        finally:
            client.close()
    finally:
        with admin(pg_url) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


# -- changes(): LISTEN / NOTIFY -----------------------------------------------------------------


def test_changes_moves_when_another_process_writes_and_only_then(pg_clean_url: str) -> None:
    daemon_store, client = PostgresStore(pg_clean_url), PostgresStore(pg_clean_url)
    try:
        create(daemon_store, "w", with_task=task("t", "w"))
        seen = daemon_store.changes()
        assert daemon_store.changes() == seen  # nothing happened

        def moves(write: Callable[[], object], what: str) -> None:
            nonlocal seen
            write()
            eventually(lambda: daemon_store.changes() != seen, f"changes() moves after {what}")
            seen = daemon_store.changes()

        moves(lambda: create(client, "v"), "a dispatch")
        moves(lambda: client.post("w", "event"), "an inbox item")
        moves(lambda: client.add_schedule(
            Schedule("s", "dev", Kind.WORKFLOW, "W", None, "{}", "* * * * *", "UTC", 5.0, None, 0, 0, None, 0.0)
        ), "a schedule")
        moves(lambda: client.delete_schedule("s"), "a schedule deleted")
        moves(lambda: create(daemon_store, "x"), "a dispatch on the same connection")
        moves(lambda: create(client, "z", custom_id="c"), "a dispatch with a custom id")

        # a heartbeat, a step and a failed write make no work: no change
        client.heartbeat(daemon("d1"))
        daemon_store.heartbeat(daemon("d2"))
        claim_tasks(daemon_store, 1e9, 5)
        batch = Batch()
        batch.append(NewEntry("w", Entry.PAUSED))
        apply(daemon_store, batch)
        with pytest.raises(DuplicateInstanceError):  # rolled back: its NOTIFY with it
            create(client, "y", custom_id="c")
        seen = daemon_store.changes()
        marker = PostgresStore(pg_clean_url)  # a write made after all of the above, then seen
        try:
            create(marker, "m")
            eventually(lambda: daemon_store.changes() != seen, "the marker's notification")
        finally:
            marker.close()
        assert daemon_store.changes()[0] == seen[0] + 1  # type: ignore[index]  # the marker's alone
    finally:
        daemon_store.close()
        client.close()


def test_a_client_store_never_listens(pg_clean_url: str) -> None:
    client = PostgresStore(pg_clean_url)
    try:
        create(client, "w")
        client.post("w", "event")
        assert client._conn.execute("SELECT pg_listening_channels()").fetchall() == []
    finally:
        client.close()


def test_a_dispatch_from_another_process_is_seen_by_the_engine_without_a_look_in_between(
    pg_clean_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("zenaton_runtime.engine.lookout.SAFETY", math.inf)
    h = Harness(pg_clean_url, background_commits=True)
    other = open_store(pg_clean_url, now=h.clock.now)
    try:
        h.run()  # idle: the engine looked once and has no reason to look again
        seen = h.store.changes()
        instance = Control(other, h.project.codec, "dev").dispatch(Sequential(2))
        eventually(lambda: h.store.changes() != seen, "the dispatch's notification")
        h.run()  # the clock has not moved: only changes() can tell
        assert h.status(instance.id) == "completed" and h.result(instance.id) == 13
    finally:
        other.close()
        h.close()


def test_idle_steps_make_no_query(pg_clean_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zenaton_runtime.engine.lookout.SAFETY", math.inf)
    h = Harness(pg_clean_url, background_commits=True)
    try:
        counting = CountingStore(h.store)
        h.engine.store = counting
        h.engine.lookout.store = counting
        instance_id = h.dispatch(Sequential(1))
        h.run()
        assert h.status(instance_id) == "completed"
        looks = counting.looks
        h.engine.run_until_idle()
        assert counting.looks == looks and counting.late_claims == 0
    finally:
        h.close()


# -- the queue, shared ---------------------------------------------------------------------------


def test_concurrent_claims_and_posts_never_claim_twice(pg_clean_url: str) -> None:
    main = PostgresStore(pg_clean_url)
    create(main, "w")
    create(main, "k", kind=Kind.TASK)
    batch = Batch()
    for n in range(200):
        batch.add_task(task(f"t{n}", "k"))
    apply(main, batch)
    errors: list[BaseException] = []
    claimed: list[str] = []

    def worker(n: int) -> None:
        s = PostgresStore(pg_clean_url)
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
    try:
        assert errors == []
        assert len(main.inbox("w")) == 160
        assert len(claimed) == len(set(claimed)) == 200
        assert {t.status for t in main.tasks_of("k")} == {TaskStatus.RUNNING}
    finally:
        main.close()


def test_a_claim_skips_the_tasks_another_transaction_holds(pg_clean_url: str) -> None:
    s = PostgresStore(pg_clean_url)
    try:
        create(s, "k", kind=Kind.TASK, with_task=task("t1", "k", run_at=1.0))
        create(s, "j", kind=Kind.TASK, with_task=task("t2", "j", run_at=2.0))
        with admin(pg_clean_url) as other, other.transaction():
            other.execute("SELECT 1 FROM zenaton.tasks WHERE id = 't1' FOR UPDATE")
            assert [t.id for t in claim_tasks(s, 10.0, 5)] == ["t2"]  # at once: not waiting for t1
        assert [t.id for t in claim_tasks(s, 10.0, 5)] == ["t1"]
    finally:
        s.close()


def test_a_post_committed_while_the_daemon_waits_keeps_the_instance_ready(pg_clean_url: str) -> None:
    """The step locks the instance's row before it recomputes `ready`: a post that held the row
    first is seen (had the flag been computed before the post committed, the item would wait
    in the inbox of an instance no step looks at)."""
    s = PostgresStore(pg_clean_url)
    try:
        create(s, "w")
        first = s.post("w", "event", "first")
        with admin(pg_clean_url) as client:
            client.execute("BEGIN")
            client.execute(
                "INSERT INTO zenaton.inbox (instance_id, kind, name, created_at) VALUES ('w', 'event', 'second', 1)"
            )
            client.execute("UPDATE zenaton.instances SET ready = true WHERE id = 'w'")
            batch = Batch()
            batch.consume_inbox("w", [first])
            step = threading.Thread(target=apply, args=(s, batch))
            step.start()
            step.join(0.3)
            assert step.is_alive()  # waiting for the client's row lock
            client.execute("COMMIT")
            step.join(10)
        assert [i.name for i in s.inbox("w")] == ["second"]
        assert s.ready_instances(5) == ["w"]
    finally:
        s.close()


def test_a_step_that_fails_is_rolled_back_whole(pg_clean_url: str) -> None:
    s = PostgresStore(pg_clean_url)
    try:
        create(s, "w", with_task=task("t", "w"))
        batch = Batch()
        batch.append(NewEntry("w", Entry.PAUSED))
        batch.update_task("ghost", status=TaskStatus.DONE)
        with pytest.raises(NotFoundError):
            s.commit_step(batch, 1e9, 5)
        assert [e.seq for e in s.journal("w")] == [1]
        assert [t.status for t in s.tasks_of("w")] == [TaskStatus.QUEUED]  # the claim rolled back too
        assert s.get_instance("w") == instance("w")
        with admin(pg_clean_url) as conn:
            conn.execute("ALTER TABLE zenaton.journal ADD CONSTRAINT short CHECK (length(coalesce(data, '')) < 20) NOT VALID")
        try:
            batch = Batch()
            batch.append(NewEntry("w", Entry.PAUSED, data='{"a long": "text, too long"}'))
            with pytest.raises(StoreError, match="short"):
                s.commit_step(batch, 1e9, 5)
            assert [t.status for t in s.tasks_of("w")] == [TaskStatus.QUEUED]
            assert [t.id for t in claim_tasks(s, 1e9, 5)] == ["t"]  # the connection is usable after it
        finally:
            with admin(pg_clean_url) as conn:
                conn.execute("ALTER TABLE zenaton.journal DROP CONSTRAINT short")
    finally:
        s.close()


# -- configuration ------------------------------------------------------------------------------


def test_zenaton_store_url_overrides_the_file(tmp_path) -> None:
    from zenaton_runtime.project.config import load_config

    (tmp_path / "zenaton.toml").write_text('[store]\nurl = "postgresql://zen@db.example/shop"\n')
    assert load_config(tmp_path, environ={}).store_url == "postgresql://zen@db.example/shop"
    url = "postgresql://other@127.0.0.1:6543/elsewhere"
    assert load_config(tmp_path, environ={"ZENATON_STORE_URL": url}).store_url == url
    (tmp_path / ".env").write_text("ZENATON_STORE_URL=postgres://from@dotenv/db\n")
    assert load_config(tmp_path, environ={}).store_url == "postgres://from@dotenv/db"  # .env, then the file
    assert load_config(tmp_path, environ={"ZENATON_STORE_URL": url}).store_url == url  # the environment first
    relative = load_config(tmp_path, environ={"ZENATON_STORE_URL": "sqlite:///state/z.db"}).store_url
    assert relative == f"sqlite:///{tmp_path.resolve()}/state/z.db"  # relative to the project, as in the file

"""The PostgreSQL backend: one database shared by the daemon, the CLI, scripts, task workers
and the dashboard (``postgresql://user@host:port/database``).

One connection per store object (psycopg 3, autocommit): reads are single statements, writers
run ``BEGIN`` ... ``COMMIT`` through ``_write``, and a step's commit (``commit_step``) is one
such transaction with the claim of the next tasks (``postgres_commit.py``). A deadlock or a
serialization failure is retried here with a short backoff; any other database error is a
StoreError naming the server, never a traceback. A connection found broken is opened again on
the next call. ``durability="full"`` commits with ``synchronous_commit = on``; ``"fast"`` with
``off`` (a server crash may lose the last commits, never corrupt the database).

The tables live in the schema ``zenaton`` (see ``postgres_schema.py``), the same tables as
SQLite's. Rows read back as records through ``sqlite_rows.py``: the same columns, the same
records. Other processes' writes reach ``changes()`` by LISTEN/NOTIFY (``postgres_changes.py``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from zenaton_runtime.errors import ConfigError, NotFoundError, StoreError
from zenaton_runtime.models import InboxItem, InboxKind, Instance, InstanceStatus, JournalEntry, Kind, TaskRecord, Timer
from zenaton_runtime.store.commit_thread import CommitThread
from zenaton_runtime.store.ops import NewEntry
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.postgres_changes import Notifications, notify_daemons
from zenaton_runtime.store.postgres_commit import PostgresStepCommits
from zenaton_runtime.store.postgres_leases import PostgresLeases
from zenaton_runtime.store.postgres_monitoring import PostgresMonitoring
from zenaton_runtime.store.postgres_prune import PostgresPrune
from zenaton_runtime.store.postgres_rewind import PostgresRewind
from zenaton_runtime.store.postgres_schedules import PostgresSchedules
from zenaton_runtime.store.postgres_schema import (
    DAEMON_LOCK,
    LATEST,
    OPEN_TASK,
    OWNED_RUNNING_INSTANCE,
    QUEUED_TASK,
    RUNNING_INSTANCE,
    SCHEMA,
    Connection,
    ForeignSchema,
    current_version,
    idle_limit,
    migrate,
)
from zenaton_runtime.store.postgres_writer import Fence, Writer
from zenaton_runtime.store.sqlite_rows import (
    ENTRIES,
    INBOX_COLS,
    INSTANCE_COLS,
    JOURNAL_COLS,
    TASK_COLS,
    inbox_row,
    instance_row,
    task_row,
)

T = TypeVar("T")

CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
DAEMON_LOCK_PATIENCE = 3.0  # seconds a starting daemon waits for the lock of one that just died
RETRIES = 20  # deadlocks and serialization failures, tried again with a growing pause
LOST_SESSION_PATIENCE = 10.0  # seconds a lost session's last statement (a COMMIT) may still run on the server
# Transient: the whole transaction was rolled back and may simply run again.
SESSION_ENDED = ("57P01", "57P02", "57P03")  # admin_shutdown, crash_shutdown, cannot_connect_now
COMMIT: tuple[str, tuple[Any, ...]] = ("COMMIT", ())
TRANSIENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable)


class PostgresStore(
    PostgresStepCommits, PostgresLeases, PostgresSchedules, PostgresRewind, PostgresMonitoring, PostgresPrune
):
    """The Store protocol over one PostgreSQL database."""

    def __init__(self, url: str, *, now: Callable[[], float] = time.time, durability: str = "full"):
        if durability not in ("full", "fast"):
            raise ConfigError(f"unknown store durability {durability!r} (use 'full' or 'fast')")
        self.url = url
        self.where = describe(url)
        self.now = now
        self.durability = durability
        self._other_writes = 0  # this store's writes other than steps and heartbeats
        self._reconnects = 0  # a new connection may have missed notifications: a change too
        self._notifications = Notifications()
        self._daemon_lock = False  # this store is a daemon's: it holds DAEMON_LOCK, shared (see take_lease)
        self._me: str | None = None  # the lease this store holds (a daemon's id), once take_lease ran
        self._ttl = 0.0
        self._held: dict[str, int] = {}  # instance id -> the epoch this store claimed it at
        self._leases_looked = -math.inf
        self._first = True
        self._news_counted, self._young_until = 0, -math.inf
        self._journal_lengths: dict[str, int] = {}  # of the instances the last get_instances read
        self._in_flight: PendingCommit | None = None  # a step committing in the background
        self._commit_thread: CommitThread | None = None
        self._reader: Connection | None = None  # reads while a step commits on the connection
        self._conn = self._connect()
        self._pid = self._conn.info.backend_pid  # the server process of this session
        self._lost_pid: int | None = None  # that of the session lost last, until running_attempts waited for it
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    # -- plumbing ------------------------------------------------------------
    def _connect(self) -> Connection:
        settings = _settings(self.url)
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in settings:
            options["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in settings:
            options["application_name"] = "zenaton"
        try:
            conn = psycopg.connect(self.url, **options)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the PostgreSQL store at {self.where}: {_reason(e)}") from None
        try:
            # the session's settings, in one round trip; random_page_cost as for data in memory or
            # on SSD (PostgreSQL's default assumes spinning disks): a lookup by id then uses its
            # index on a table of a few thousand rows too, where a scan of all of it costs ten times more
            conn.execute(
                "SELECT set_config('search_path', %s, false), set_config('client_encoding', 'UTF8', false),"
                " set_config('synchronous_commit', %s, false), set_config('random_page_cost', '1.1', false)",
                (SCHEMA, "on" if self.durability == "full" else "off"),
            )
            if self._me is not None:
                conn.execute(idle_limit(self._ttl))
        except psycopg.Error as e:
            conn.close()
            raise StoreError(f"cannot set up the PostgreSQL store at {self.where}: {_reason(e)}") from None
        return conn

    def _setup(self) -> None:
        c = self._conn
        try:
            encoding = str(c.execute("SHOW server_encoding").fetchone()[0])  # type: ignore[index]
            if encoding.upper() not in ("UTF8", "UTF-8"):
                raise StoreError(
                    f"the PostgreSQL store at {self.where} uses the encoding {encoding}; zenaton needs a UTF8 database"
                )
            version = current_version(c)
            if version is not None and version > LATEST:
                raise StoreError(
                    f"the PostgreSQL store at {self.where} has schema version {version}, newer than this "
                    f"zenaton ({LATEST}); upgrade zenaton"
                )
            if version != LATEST:
                try:
                    migrate(c)
                except ForeignSchema as e:
                    raise StoreError(
                        f"the schema {SCHEMA!r} of {self.where} holds tables of another application "
                        f"({', '.join(e.tables[:5])}) and no {SCHEMA}.schema_version table; refusing to use it"
                    ) from None
                except pg_errors.InsufficientPrivilege as e:
                    raise StoreError(
                        f"the PostgreSQL store at {self.where} needs its tables created or migrated (version "
                        f"{version or 0}, this zenaton needs {LATEST}), and this role may not: {_reason(e)}. "
                        "Open it once with a role that may create them (docs/postgresql.md)"
                    ) from None
        except psycopg.Error as e:
            raise StoreError(f"cannot open the PostgreSQL store at {self.where}: {_reason(e)}") from None

    def _connection(self) -> Connection:
        """The store's connection, opened again if it was lost (the server restarted, a network
        cut): listening again, holding the daemon lock again, and counted as a change."""
        conn = self._conn
        if not conn.closed:
            return conn
        conn.close()
        self._lost_pid = self._pid
        self._conn = self._connect()
        self._pid = self._conn.info.backend_pid
        self._reconnects += 1
        if self._notifications.listening:
            self._notifications.listen(self._conn)
        if self._daemon_lock:
            self._daemon_lock = False
            self._take_daemon_lock()
        return self._conn

    def _error(self, e: psycopg.Error) -> StoreError:
        if isinstance(e, psycopg.DataError) and "NUL" in str(e):
            return StoreError(f"store {self.where}: text with a NUL character cannot be stored in PostgreSQL")
        return StoreError(f"store {self.where}: {_reason(e)}")

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        """One statement; a read on a connection that just broke is tried once on a new one.
        While a step commits in the background, on the second connection."""
        if self._in_flight is not None:
            return self._read_beside(sql, params)
        for attempt in (1, 2):
            try:
                return self._connection().execute(sql, params).fetchall()
            except psycopg.OperationalError as e:
                if attempt == 2 or not self._lost(e):
                    raise self._error(e) from None
                self._conn.close()  # the next call opens another
            except psycopg.Error as e:
                raise self._error(e) from None
        raise AssertionError("unreachable")

    def _read_beside(self, sql: str, params: Any) -> list[Any]:
        """``_read`` on the reader, opened at its first use, and again after a loss."""
        for attempt in (1, 2):
            reader = self._reader
            if reader is None or reader.closed:
                reader = self._reader = self._connect()
            try:
                return reader.execute(sql, params).fetchall()
            except psycopg.OperationalError as e:
                if attempt == 2 or not self._lost(e, reader):
                    raise self._error(e) from None
                reader.close()
            except psycopg.Error as e:
                raise self._error(e) from None
        raise AssertionError("unreachable")

    def _lost(self, e: psycopg.Error, conn: Connection | None = None) -> bool:
        """Whether the error ended the session (of ``conn``, by default the store's): the connection
        broke, or the server is ending it (a restart, pg_terminate_backend) and will close it in a moment."""
        state = e.sqlstate
        broken = (self._conn if conn is None else conn).broken
        return broken or state is None or state.startswith("08") or state in SESSION_ENDED

    def _write(
        self,
        fn: Callable[[Writer], T],
        *,
        notify: bool = True,
        fenced: bool = False,
        landed: Callable[[], bool] | None = None,
    ) -> T:
        """``fn`` and the Writer's gathered rows in one transaction, tried again after a deadlock,
        or when the session turns out lost at its BEGIN (nothing was written yet). ``notify``: a
        change other stores' ``changes()`` must see (NOTIFY, delivered at COMMIT). ``fenced``: a
        step (``fn`` starts with ``Writer.run``, whose lock read takes the BEGIN with it), fenced
        when the store holds a lease: its writes as an owner must be to instances it holds.

        ``landed``: ``fn`` sends nothing itself (it only gathers rows), so BEGIN, the rows, the
        NOTIFY and COMMIT go in one pipeline: one round trip (a dispatch). A session lost on the
        way leaves it unknown whether the COMMIT ran; ``landed()``, asked on a new session, tells
        (a dispatch: its instance, by the id the client made, is there), and if not it is tried
        once more.

        A step committing in the background lands first: writes are made in order."""
        self.settle()
        return self._write_now(fn, notify, fenced, landed)

    def _write_now(self, fn: Callable[[Writer], T], notify: bool, fenced: bool, landed: Callable[[], bool] | None) -> T:
        """``_write`` with no step in flight (or as the step in flight, on its thread)."""
        delay = 0.002
        for attempt in range(1, RETRIES + 1):
            conn = self._connection()
            if landed is None and not fenced:  # a step's BEGIN goes with its first round trip
                try:
                    conn.execute("BEGIN")
                except psycopg.Error as e:
                    lost = isinstance(e, psycopg.OperationalError) and self._lost(e)
                    if lost:
                        self._conn.close()  # the next call opens another
                    if lost and attempt == 1:
                        continue
                    raise self._error(e) from None
            writer = None
            try:
                try:
                    fence = self._fence() if fenced else None
                    writer = Writer(conn, self.now, fence, begin=landed is not None or fenced)
                    result = fn(writer)
                    then = [notify_daemons(writer.notify_owners)] if notify else []
                    if landed is not None:
                        writer.flush([*then, COMMIT])  # all of it in one round trip
                    elif not writer.committed:  # (a step commits with its last flush: it asks for no notify)
                        writer.flush(then)  # one round trip
                        conn.execute("COMMIT")
                    return result
                except BaseException:
                    self._rollback(conn)
                    raise
            except TRANSIENT as e:
                if attempt == RETRIES:
                    raise self._error(e) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)
            except psycopg.Error as e:
                lost = isinstance(e, psycopg.OperationalError) and self._lost(e)
                if lost:
                    self._conn.close()  # the next call opens another (a lost COMMIT may have landed)
                if lost and landed is not None and attempt == 1:
                    if landed():
                        return result
                    continue
                if lost and writer is not None and not writer.opened and attempt == 1:
                    continue  # lost at BEGIN: nothing was written
                raise self._error(e) from None
            finally:
                if notify:
                    self._other_writes += 1  # after the commit (or its failure): never before it
        raise AssertionError("unreachable")

    def _fence(self) -> Fence | None:
        return None if self._me is None else Fence(self._me, self._held)

    def _set(self, setting: str) -> None:
        """A session setting (``SET ...``) on the store's connection."""
        self.settle()
        try:
            self._connection().execute(setting)
        except psycopg.Error as e:
            raise self._error(e) from None

    def _rollback(self, conn: Connection) -> None:
        if conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
            return  # a failed COMMIT ends the transaction itself
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # a lost session: the server rolled it back

    # -- clients -------------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        # Without a custom id, creating is gathering rows (a custom id is inserted at once, its index deciding)
        landed = (lambda: self.get_instance(instance.id) is not None) if instance.custom_id is None else None
        self._write(lambda w: w.create_instance(instance, started, task, skip_duplicate=False), landed=landed)

    def create_instances(self, records: list[tuple[Instance, NewEntry, TaskRecord | None]]) -> list[bool]:
        return self._write(lambda w: [w.create_instance(*r, skip_duplicate=True) for r in records])

    def get_instance(self, instance_id: str) -> Instance | None:
        if not storable(instance_id):
            return None
        rows = self._read(f"SELECT {INSTANCE_COLS} FROM instances WHERE id = %s", (instance_id,))
        return instance_row(rows[0]) if rows else None

    def list_instances(
        self,
        *,
        env: str | None = None,
        name: str | None = None,
        status: InstanceStatus | None = None,
        custom_id: str | None = None,
        kind: str | None = None,
        id_prefix: str | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Instance]:
        """Matching instances, newest first (created_at, then insertion order); ``before``: older
        than that instance in this order (a range of the created_at index, never an OFFSET)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("env", env),
            ("name", name),
            ("custom_id", custom_id),
            ("parent_id", parent_id),
            ("status", None if status is None else InstanceStatus(status).value),
            ("kind", None if kind is None else Kind(kind).value),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if id_prefix:
            clauses.append("id >= %s AND left(id, %s) = %s")
            params += [id_prefix, len(id_prefix), id_prefix]
        if before is not None:
            clauses.append("(created_at, ord) < (SELECT created_at, ord FROM instances WHERE id = %s)")
            params.append(before)
        if not all(storable(p) for p in params if isinstance(p, str)):
            return []  # nothing stored holds a NUL character
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        params.append(None if limit is None else max(limit, 0))
        sql = f"SELECT {INSTANCE_COLS} FROM instances{where} ORDER BY created_at DESC, ord DESC LIMIT %s"
        return [instance_row(r) for r in self._read(sql, params)]

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        if not storable(instance_id):
            return []
        rows = self._read(
            f"SELECT {JOURNAL_COLS} FROM journal WHERE instance_id = %s AND seq > %s ORDER BY seq",
            (instance_id, after_seq),
        )
        return [JournalEntry(r[0], r[1], ENTRIES[r[2]], *r[3:]) for r in rows]

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        if not storable(instance_id):
            return []
        rows = self._read(f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = %s ORDER BY ord", (instance_id,))
        return [task_row(r) for r in rows]

    def open_tasks_of(self, instance_id: str) -> list[TaskRecord]:
        if not storable(instance_id):
            return []
        rows = self._read(
            f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = %s AND {OPEN_TASK} ORDER BY ord", (instance_id,)
        )
        return [task_row(r) for r in rows]

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        if not storable(instance_id):
            raise NotFoundError(f"no instance with id {instance_id!r}")
        return self._write(lambda w: w.post(instance_id, kind, name, data))

    def get_instances(self, instance_ids: list[str]) -> dict[str, Instance]:
        """The instances by id; their journals' lengths (``last_seq``) are read with them and
        kept until the next call, for ``journal_length``."""
        ids = [i for i in instance_ids if storable(i)]
        rows = self._read(f"SELECT {INSTANCE_COLS}, last_seq FROM instances WHERE id = ANY(%s)", (ids,)) if ids else []
        self._journal_lengths = {row[0]: row[14] for row in rows}
        return {row[0]: instance_row(row) for row in rows}

    def journal_length(self, instance_id: str) -> int | None:
        return self._journal_lengths.get(instance_id)

    def inboxes(self, instance_ids: list[str]) -> dict[str, list[InboxItem]]:
        found: dict[str, list[InboxItem]] = {i: [] for i in instance_ids}
        ids = [i for i in instance_ids if storable(i)]
        if ids:
            rows = self._read(f"SELECT {INBOX_COLS} FROM inbox WHERE instance_id = ANY(%s) ORDER BY id", (ids,))
            for row in rows:
                found[row[1]].append(inbox_row(row))
        return found

    def inbox(self, instance_id: str) -> list[InboxItem]:
        if not storable(instance_id):
            return []
        rows = self._read(f"SELECT {INBOX_COLS} FROM inbox WHERE instance_id = %s ORDER BY id", (instance_id,))
        return [inbox_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        result = {s.value: 0 for s in InstanceStatus}
        for status, n in self._read("SELECT status, count(*) FROM instances GROUP BY status"):
            result[status] = n
        result["tasks_queued"] = self._read(f"SELECT count(*) FROM tasks WHERE {QUEUED_TASK}")[0][0]
        return result

    # -- daemon --------------------------------------------------------------
    # Once the store holds a lease (a daemon's), these read only the instances it owns.
    def ready_instances(self, limit: int) -> list[str]:
        if self._me is None:
            sql, params = "SELECT id FROM instances WHERE ready ORDER BY created_at, ord LIMIT %s", (max(limit, 0),)
        else:
            sql = "SELECT id FROM instances WHERE ready AND owner = %s ORDER BY created_at, ord LIMIT %s"
            params = (self._me, max(limit, 0))  # type: ignore[assignment]
        return [r[0] for r in self._read(sql, params)]

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        """Timers with fire_at <= now, earliest first; they stay until deleted."""
        owned, params = self._owned_timers()
        rows = self._read(
            f"SELECT instance_id, position, fire_at FROM timers WHERE fire_at <= %s{owned}"
            " ORDER BY fire_at, instance_id, position LIMIT %s",
            (now, *params, max(limit, 0)),
        )
        return [Timer(*r) for r in rows]

    def next_due(self, after: float) -> float | None:
        owned, params = self._owned_timers()
        running = RUNNING_INSTANCE if self._me is None else OWNED_RUNNING_INSTANCE
        times = self._read(
            f"SELECT (SELECT min(fire_at) FROM timers WHERE fire_at > %s{owned}),"
            f" (SELECT min(run_at) FROM tasks WHERE {QUEUED_TASK} AND run_at > %s AND {running}),"
            " (SELECT min(next_fire) FROM schedules WHERE next_fire > %s)",
            (after, *params, after, *params, after),
        )[0]
        return min((t for t in (*times, self._recheck_after(after)) if t is not None), default=None)

    def _owned_timers(self) -> tuple[str, tuple[str, ...]]:
        if self._me is None:
            return "", ()
        return " AND instance_id IN (SELECT id FROM instances WHERE owner = %s)", (self._me,)

    def running_attempts(self, task_ids: Collection[str]) -> dict[str, int]:
        """Once the session lost last (if any) has no statement running any more: its COMMIT, sent
        before the loss, may still be running on the server, and the answer depends on it."""
        self.settle()
        self._wait_for_lost_session()
        rows = self._read("SELECT id, attempts FROM tasks WHERE id = ANY(%s) AND status = 'running'", (list(task_ids),))
        return dict(rows)

    def _wait_for_lost_session(self) -> None:
        pid, self._lost_pid = self._lost_pid, None
        if pid is None:
            return
        deadline = time.monotonic() + LOST_SESSION_PATIENCE
        while self._read("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)):
            if time.monotonic() > deadline:
                self._lost_pid = pid
                raise StoreError(f"store {self.where}: a lost session (pid {pid}) is still running a statement")
            time.sleep(0.005)

    def recover(self, keep: Collection[str] = ()) -> int:
        """Running tasks back to queued, but ``keep``: with no lease held, whichever daemon claimed
        them (a daemon starts with take_lease, and stops with release, which touch only its own);
        with one, those of its own instances (a step's COMMIT that may have landed unheard)."""
        requeue = f"UPDATE tasks SET status = 'queued' WHERE {OPEN_TASK} AND status = 'running' AND NOT (id = ANY(%s))"
        params: tuple[Any, ...] = (list(keep),)
        if self._me is not None:
            requeue += " AND instance_id IN (SELECT id FROM instances WHERE owner = %s)"
            params += (self._me,)
        return self._write(lambda w: w.c.execute(requeue, params).rowcount)

    def _take_daemon_lock(self) -> None:
        """The daemon lock, shared by every daemon on the database and taken exclusively by
        ``zenaton migrate`` while it copies. Waits DAEMON_LOCK_PATIENCE seconds at most."""
        if self._daemon_lock:
            return
        deadline = time.monotonic() + DAEMON_LOCK_PATIENCE
        while not self._on_connection("SELECT pg_try_advisory_lock_shared(%s)", (DAEMON_LOCK,))[0][0]:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"the PostgreSQL store at {self.where} is locked by `zenaton migrate`, which is copying"
                    " into it; start the daemon once it is done"
                )
            time.sleep(0.1)
        self._daemon_lock = True

    def _let_go_of_daemon_lock(self) -> None:
        if self._daemon_lock:
            self._daemon_lock = False
            self._on_connection("SELECT pg_advisory_unlock_shared(%s)", (DAEMON_LOCK,))

    def _on_connection(self, sql: str, params: Any) -> list[Any]:
        """A statement on the store's own connection (its session holds the lock), never the
        reader's: taking the lock again after a reconnection happens on a step's thread."""
        try:
            return self._connection().execute(sql, params).fetchall()
        except psycopg.Error as e:
            raise self._error(e) from None

    def close(self) -> None:
        try:
            self.settle()
        finally:
            if self._commit_thread is not None:
                self._commit_thread.close()
            if self._reader is not None:
                self._reader.close()
            self._conn.close()


def storable(text: str) -> bool:
    """PostgreSQL text holds no NUL character: an id with one names nothing stored."""
    return "\x00" not in text


def _settings(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.Error as e:
        from zenaton_runtime.store import redacted

        raise ConfigError(f"invalid PostgreSQL store url: {_reason(e).replace(url, redacted(url))}") from None


def describe(url: str) -> str:
    """Where the store is, for messages: host:port/database, never a password."""
    settings = _settings(url)
    host = str(settings.get("host") or settings.get("hostaddr") or "localhost")
    port = settings.get("port")
    database = settings.get("dbname") or settings.get("user") or ""
    return f"{host}{f':{port}' if port else ''}/{database}"


def _reason(error: psycopg.Error) -> str:
    """The server's message, on one line."""
    text = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())
    return text or type(error).__name__

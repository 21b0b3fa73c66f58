"""The SQLite backend: one file shared by the daemon, the CLI, scripts and task workers.

WAL journal, ``busy_timeout``, writers under ``BEGIN IMMEDIATE`` through the one
``transaction()`` context manager, reads in autocommit. ``database is locked``
errors are retried here with a short backoff and never reach callers (after a
long wait they become a StoreError). One connection per store object, and a second
one for reads while the engine's step commits in the background (``sqlite_commit.py``).

Tables (see ``schema.py``): ``instances`` (the Instance fields, plus ``ready``:
the daemon has something to do for it, and ``last_seq``: its journal length),
``journal``, ``tasks``, ``timers``, ``inbox``, ``journal_archive`` (entries a rewind
moved out of a run, by run number) and ``daemons`` (each running daemon's record).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from zenaton_runtime.errors import ConfigError, StoreError
from zenaton_runtime.models import (
    InboxItem,
    InboxKind,
    Instance,
    InstanceStatus,
    JournalEntry,
    Kind,
    TaskRecord,
    Timer,
)
from zenaton_runtime.store.commit_thread import CommitThread
from zenaton_runtime.store.ops import NewEntry
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.schema import LATEST, OPEN_TASK, QUEUED_TASK, RUNNING_INSTANCE, current_version, migrate
from zenaton_runtime.store.single_daemon import SingleDaemonLeases
from zenaton_runtime.store.sqlite_commit import SQLiteStepCommits
from zenaton_runtime.store.sqlite_monitoring import SQLiteMonitoring
from zenaton_runtime.store.sqlite_prune import SQLitePrune
from zenaton_runtime.store.sqlite_rewind import SQLiteRewind
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
from zenaton_runtime.store.sqlite_schedules import SQLiteSchedules
from zenaton_runtime.store.sqlite_wake import Waker
from zenaton_runtime.store.sqlite_writer import Writer

T = TypeVar("T")


BUSY_TIMEOUT_MS = 10_000
LOCK_PATIENCE = 60.0  # seconds of retrying "database is locked" before giving up


class SQLiteStore(SQLiteStepCommits, SQLiteSchedules, SQLiteRewind, SQLiteMonitoring, SQLitePrune, SingleDaemonLeases):
    """The Store protocol over one SQLite file (created 0600 in a 0700 directory).

    ``durability="fast"`` uses ``synchronous=NORMAL``: a power loss may drop the
    last commits, never corrupt the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, now: Callable[[], float] = time.time, durability: str = "full"):
        if durability not in ("full", "fast"):
            raise ConfigError(f"unknown store durability {durability!r} (use 'full' or 'fast')")
        self.path = os.path.abspath(os.fspath(path))
        self.now = now
        self._other_writes = 0  # commits of this connection other than the engine's own steps
        self._waker = Waker(self.path)
        self._in_flight: PendingCommit | None = None  # a step committing in the background
        self._commit_thread: CommitThread | None = None
        self._reader: sqlite3.Connection | None = None  # reads while the writer commits
        self.committed_at = 0.0  # time.time() when this connection's last commit landed
        self._journal_lengths: dict[str, int] = {}  # of the instances the last get_instances read
        _prepare_file(self.path)
        self._conn = self._connect()
        try:
            self._retry(self._setup, durability)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
                cached_statements=256,
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from e

    def _setup(self, durability: str) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Check before writing anything: a foreign database must stay byte-identical.
        try:
            version = current_version(c)
        except sqlite3.DatabaseError as e:
            if _is_locked(e):
                raise
            if "not a database" in str(e):
                raise StoreError(f"{self.path} is not a SQLite database; refusing to open it as a zenaton store") from e
            raise StoreError(f"{self.path} is not a zenaton store ({e}); refusing to open it") from e
        if version is None:
            if c.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]:
                raise StoreError(
                    f"{self.path} is a SQLite database of another application (it has tables but no "
                    "schema_version table); refusing to use it"
                )
        elif version > LATEST:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this zenaton ({LATEST}); upgrade zenaton"
            )
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {self.path} in WAL mode (got {mode!r})")
        c.execute("PRAGMA synchronous = " + ("FULL" if durability == "full" else "NORMAL"))
        if version != LATEST:
            migrate(c, self.transaction)
        for suffix in ("-wal", "-shm"):
            _chmod_quietly(self.path + suffix, 0o600)

    # -- plumbing ------------------------------------------------------------
    def _retry(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn, retrying while the database is locked by another process."""
        delay, deadline = 0.002, None
        while True:
            try:
                return fn(*args)
            except sqlite3.OperationalError as e:
                if not _is_locked(e):
                    raise StoreError(f"store {self.path}: {e}") from e
                now = time.monotonic()
                deadline = deadline or now + LOCK_PATIENCE
                if now > deadline:
                    raise StoreError(f"store {self.path} stayed locked for {LOCK_PATIENCE:.0f}s: {e}") from e
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)
            except sqlite3.Error as e:
                raise StoreError(f"store {self.path}: {e}") from e

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The one way to write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        self.settle()
        c = self._conn
        if c.in_transaction:
            raise StoreError("nested store transaction")
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        conn = self._conn if self._in_flight is None else self._reader
        return self._retry(lambda: conn.execute(sql, params).fetchall())  # type: ignore[union-attr]

    def _write(self, fn: Callable[[Writer], T], *, step: bool = False) -> T:
        def attempt() -> T:
            with self.transaction() as c:
                writer = Writer(c, self.now)
                result = fn(writer)
                writer.flush()
                return result

        try:
            result = self._retry(attempt)
            self.committed_at = time.time()
            if not step:
                self._waker.nudge()  # after the commit: the daemon looks now, not at its next poll
            return result
        finally:
            if not step:
                self._other_writes += 1  # after the commit (or its failure): never before it

    # -- clients -------------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        self._write(lambda w: w.create_instance(instance, started, task, skip_duplicate=False))

    def create_instances(self, records: list[tuple[Instance, NewEntry, TaskRecord | None]]) -> list[bool]:
        return self._write(lambda w: [w.create_instance(*r, skip_duplicate=True) for r in records])

    def get_instance(self, instance_id: str) -> Instance | None:
        rows = self._read(f"SELECT {INSTANCE_COLS} FROM instances WHERE id = ?", (instance_id,))
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
                clauses.append(f"{column} = ?")
                params.append(value)
        if id_prefix:
            clauses.append("id >= ? AND substr(id, 1, ?) = ?")
            params += [id_prefix, len(id_prefix), id_prefix]
        if before is not None:
            clauses.append("(created_at, ord) < (SELECT created_at, ord FROM instances WHERE id = ?)")
            params.append(before)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        params.append(-1 if limit is None else max(limit, 0))
        sql = f"SELECT {INSTANCE_COLS} FROM instances{where} ORDER BY created_at DESC, ord DESC LIMIT ?"
        return [instance_row(r) for r in self._read(sql, params)]

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        rows = self._read(
            f"SELECT {JOURNAL_COLS} FROM journal WHERE instance_id = ? AND seq > ? ORDER BY seq",
            (instance_id, after_seq),
        )
        return [JournalEntry(r[0], r[1], ENTRIES[r[2]], *r[3:]) for r in rows]

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """The instance's tasks in creation order (a scan: for inspection, not the daemon)."""
        rows = self._read(f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = ? ORDER BY ord", (instance_id,))
        return [task_row(r) for r in rows]

    def open_tasks_of(self, instance_id: str) -> list[TaskRecord]:
        rows = self._read(
            f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = ? AND {OPEN_TASK} ORDER BY ord", (instance_id,)
        )
        return [task_row(r) for r in rows]

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        return self._write(lambda w: w.post(instance_id, kind, name, data))

    def get_instances(self, instance_ids: list[str]) -> dict[str, Instance]:
        """The instances by id; their journals' lengths (``last_seq``) are read with them and
        kept until the next call, for ``journal_length``."""
        found: dict[str, Instance] = {}
        lengths: dict[str, int] = {}
        for start in range(0, len(instance_ids), 500):  # well under SQLite's limit of variables
            chunk = instance_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"SELECT {INSTANCE_COLS}, last_seq FROM instances WHERE id IN ({marks})", chunk):
                found[row[0]] = instance_row(row)
                lengths[row[0]] = row[14]
        self._journal_lengths = lengths
        return found

    def journal_length(self, instance_id: str) -> int | None:
        """How many entries the instance's journal held when the last ``get_instances`` read it
        (the engine's read at the start of a step); None if that call did not read it. Only the
        daemon appends to a journal, and a step reads its instances before it writes them: an
        activation learns from this that a fresh instance's journal is its ``started`` entry
        alone, without reading it."""
        return self._journal_lengths.get(instance_id)

    def inboxes(self, instance_ids: list[str]) -> dict[str, list[InboxItem]]:
        found: dict[str, list[InboxItem]] = {i: [] for i in instance_ids}
        for start in range(0, len(instance_ids), 500):
            chunk = instance_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                f"SELECT {INBOX_COLS} FROM inbox WHERE instance_id IN ({marks}) ORDER BY id",
                chunk,
            )
            for row in rows:
                found[row[1]].append(inbox_row(row))
        return found

    def inbox(self, instance_id: str) -> list[InboxItem]:
        rows = self._read(
            f"SELECT {INBOX_COLS} FROM inbox WHERE instance_id = ? ORDER BY id",
            (instance_id,),
        )
        return [inbox_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        result = {s.value: 0 for s in InstanceStatus}
        for status, n in self._read("SELECT status, count(*) FROM instances GROUP BY status"):
            result[status] = n
        result["tasks_queued"] = self._read(f"SELECT count(*) FROM tasks WHERE {QUEUED_TASK}")[0][0]
        return result

    # -- daemon --------------------------------------------------------------
    def ready_instances(self, limit: int) -> list[str]:
        rows = self._read("SELECT id FROM instances WHERE ready = 1 ORDER BY created_at, ord LIMIT ?", (max(limit, 0),))
        return [r[0] for r in rows]

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        """Timers with fire_at <= now, earliest first; they stay until deleted."""
        rows = self._read(
            "SELECT instance_id, position, fire_at FROM timers WHERE fire_at <= ?"
            " ORDER BY fire_at, instance_id, position LIMIT ?",
            (now, max(limit, 0)),
        )
        return [Timer(*r) for r in rows]

    def next_due(self, after: float) -> float | None:
        times = self._read(
            "SELECT (SELECT min(fire_at) FROM timers WHERE fire_at > ?),"
            f" (SELECT min(run_at) FROM tasks WHERE {QUEUED_TASK} AND run_at > ? AND {RUNNING_INSTANCE}),"
            " (SELECT min(next_fire) FROM schedules WHERE next_fire > ?)",
            (after, after, after),
        )[0]
        return min((t for t in times if t is not None), default=None)

    def running_attempts(self, task_ids: Collection[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ids = list(task_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, attempts FROM tasks WHERE id IN ({marks}) AND status = 'running'"
            found.update(self._read(sql, chunk))
        return found

    def recover(self, keep: Collection[str] = ()) -> int:
        def requeue(w: Writer) -> int:
            where = f"{OPEN_TASK} AND status = 'running'"  # through the index of open tasks, not every task
            if not keep:
                return int(w.c.execute(f"UPDATE tasks SET status = 'queued' WHERE {where}").rowcount)
            running = w.c.execute(f"SELECT id FROM tasks WHERE {where}").fetchall()
            orphans = [(task_id,) for (task_id,) in running if task_id not in keep]
            w.c.executemany("UPDATE tasks SET status = 'queued' WHERE id = ?", orphans)
            return len(orphans)

        return self._write(requeue)

    def close(self) -> None:
        try:
            self.settle()
        finally:
            if self._commit_thread is not None:
                self._commit_thread.close()
                self._reader.close()  # type: ignore[union-attr]
            self._conn.close()
            self._waker.close()


def _is_locked(e: Exception) -> bool:
    message = str(e).lower()
    return "locked" in message or "busy" in message


def _chmod_quietly(path: str, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:
        pass  # absent, or another user's file: SQLite already gives it the db file's mode


def _prepare_file(path: str) -> None:
    """Create the directory (0700) and an empty db file (0600) if there is none yet."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)
        except OSError as e:
            raise StoreError(f"cannot create the store directory {directory}: {e}") from e
    if os.path.isdir(path):
        raise StoreError(f"the store path {path} is a directory")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # No header check with open()/close() here: closing any descriptor of the file drops
        # every POSIX lock this process's other SQLite connections hold on it, after which
        # another process may checkpoint and delete the WAL under them. SQLite itself refuses
        # a file that is not a database, in _setup, before anything is written.
        return
    except OSError as e:
        raise StoreError(f"cannot create the store {path}: {e}") from e
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
    finally:
        os.close(fd)

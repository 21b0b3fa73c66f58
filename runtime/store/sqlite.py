"""The SQLite backend: one file shared by the daemon, the CLI, scripts and task workers.

WAL journal, ``busy_timeout``, writers under ``BEGIN IMMEDIATE`` through the one
``transaction()`` context manager, reads in autocommit. ``database is locked``
errors are retried here with a short backoff and never reach callers (after a
long wait they become a StoreError). One connection per store object.

Tables (see ``schema.py``): ``instances`` (the Instance fields, plus ``ready``:
the daemon has something to do for it, and ``last_seq``: its journal length),
``journal``, ``tasks``, ``timers`` and ``inbox``.
"""
from __future__ import annotations

import dataclasses
import os
import random
import sqlite3
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from ..errors import ConfigError, DuplicateInstanceError, NotFoundError, StoreError
from ..models import Entry, InboxItem, Instance, InstanceStatus, JournalEntry, Kind, TaskRecord, TaskStatus, Timer
from . import UNSET, Batch, NewEntry
from .schema import LATEST, current_version, migrate

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
LOCK_PATIENCE = 60.0  # seconds of retrying "database is locked" before giving up
SQLITE_MAGIC = b"SQLite format 3\x00"

INSTANCE_COLS = (
    "id, kind, name, version, custom_id, env, status, data, properties, error,"
    " parent_id, parent_position, created_at, updated_at"
)
TASK_COLS = "id, instance_id, position, name, data, status, retry_index, attempts, run_at, created_at"
JOURNAL_COLS = "instance_id, seq, type, position, name, data, properties, created_at"
UNFINISHED_SQL = "status IN ('running', 'paused')"  # must match the partial unique index


class SQLiteStore:
    """The Store protocol over one SQLite file (created 0600 in a 0700 directory).

    ``durability="fast"`` uses ``synchronous=NORMAL``: a power loss may drop the
    last commits, never corrupt the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, now: Callable[[], float] = time.time, durability: str = "full"):
        if durability not in ("full", "fast"):
            raise ConfigError(f"unknown store durability {durability!r} (use 'full' or 'fast')")
        self.path = os.path.abspath(os.fspath(path))
        self.now = now
        _prepare_file(self.path)
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000, cached_statements=256,
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from e
        try:
            self._retry(self._setup, durability)
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, durability: str) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Check before writing anything: a foreign database must stay byte-identical.
        try:
            version = current_version(c)
        except sqlite3.DatabaseError as e:
            if _is_locked(e):
                raise
            raise StoreError(f"{self.path} is not a zenaton store ({e}); refusing to open it") from e
        if version is None:
            if c.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]:
                raise StoreError(
                    f"{self.path} is a SQLite database of another application (it has tables but no "
                    "schema_version table); refusing to use it"
                )
        elif version > LATEST:
            raise StoreError(f"{self.path} has schema version {version}, newer than this zenaton ({LATEST}); upgrade zenaton")
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
        return self._retry(lambda: self._conn.execute(sql, params).fetchall())

    def _write(self, fn: Callable[[_Writer], T]) -> T:
        def attempt() -> T:
            with self.transaction() as c:
                writer = _Writer(c, self.now)
                result = fn(writer)
                writer.flush()
                return result

        return self._retry(attempt)

    # -- clients -------------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        self._write(lambda w: w.create_instance(instance, started, task, skip_duplicate=False))

    def get_instance(self, instance_id: str) -> Instance | None:
        rows = self._read(f"SELECT {INSTANCE_COLS} FROM instances WHERE id = ?", (instance_id,))
        return _instance(rows[0]) if rows else None

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
    ) -> list[Instance]:
        """Matching instances, newest first (created_at, then insertion order)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("env", env), ("name", name), ("custom_id", custom_id), ("parent_id", parent_id),
            ("status", None if status is None else InstanceStatus(status).value),
            ("kind", None if kind is None else Kind(kind).value),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if id_prefix:
            clauses.append("id >= ? AND substr(id, 1, ?) = ?")
            params += [id_prefix, len(id_prefix), id_prefix]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        params.append(-1 if limit is None else max(limit, 0))
        sql = f"SELECT {INSTANCE_COLS} FROM instances{where} ORDER BY created_at DESC, ord DESC LIMIT ?"
        return [_instance(r) for r in self._read(sql, params)]

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        rows = self._read(
            f"SELECT {JOURNAL_COLS} FROM journal WHERE instance_id = ? AND seq > ? ORDER BY seq", (instance_id, after_seq)
        )
        return [JournalEntry(r[0], r[1], Entry(r[2]), *r[3:]) for r in rows]

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """The instance's tasks in creation order."""
        rows = self._read(f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = ? ORDER BY ord", (instance_id,))
        return [_task(r) for r in rows]

    def post(self, instance_id: str, kind: str, name: str | None = None, data: str | None = None) -> int:
        return self._write(lambda w: w.post(instance_id, kind, name, data))

    def inbox(self, instance_id: str) -> list[InboxItem]:
        rows = self._read(
            "SELECT id, instance_id, kind, name, data, created_at FROM inbox WHERE instance_id = ? ORDER BY id",
            (instance_id,),
        )
        return [InboxItem(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        result = {s.value: 0 for s in InstanceStatus}
        for status, n in self._read("SELECT status, count(*) FROM instances GROUP BY status"):
            result[status] = n
        result["tasks_queued"] = self._read("SELECT count(*) FROM tasks WHERE status = 'queued'")[0][0]
        return result

    # -- daemon --------------------------------------------------------------
    def ready_instances(self, limit: int) -> list[str]:
        rows = self._read("SELECT id FROM instances WHERE ready = 1 ORDER BY created_at, ord LIMIT ?", (max(limit, 0),))
        return [r[0] for r in rows]

    def claim_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        """Oldest run_at first; the returned records show status running and the new attempts."""
        if limit <= 0:
            return []

        def claim(w: _Writer) -> list[Any]:
            rows = w.c.execute(
                f"SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' AND run_at <= ? ORDER BY run_at, ord LIMIT ?",
                (now, limit),
            ).fetchall()
            w.c.executemany(
                "UPDATE tasks SET status = 'running', attempts = attempts + 1 WHERE id = ?", [(r[0],) for r in rows]
            )
            return rows

        rows = self._write(claim)
        return [dataclasses.replace(_task(r), status=TaskStatus.RUNNING, attempts=r[7] + 1) for r in rows]

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        """Timers with fire_at <= now, earliest first; they stay until deleted."""
        rows = self._read(
            "SELECT instance_id, position, fire_at FROM timers WHERE fire_at <= ?"
            " ORDER BY fire_at, instance_id, position LIMIT ?",
            (now, max(limit, 0)),
        )
        return [Timer(*r) for r in rows]

    def next_wakeup(self) -> float | None:
        timer, task = self._read(
            "SELECT (SELECT min(fire_at) FROM timers), (SELECT min(run_at) FROM tasks WHERE status = 'queued')"
        )[0]
        times = [t for t in (timer, task) if t is not None]
        return min(times) if times else None

    def apply(self, batch: Batch) -> None:
        """Every op of the batch in one transaction; any failing op rolls all of it back."""
        if batch.ops:
            self._write(lambda w: w.run(batch))

    def recover(self) -> int:
        return self._write(lambda w: w.c.execute("UPDATE tasks SET status = 'queued' WHERE status = 'running'").rowcount)

    def close(self) -> None:
        self._conn.close()


class _Writer:
    """The ops of a Batch inside one open transaction.

    Journal rows are gathered and inserted with one executemany at the end; the
    per-instance ``last_seq`` is cached for the transaction.
    """

    def __init__(self, c: sqlite3.Connection, now: Callable[[], float]):
        self.c = c
        self.now = now
        self.last_seq: dict[str, int] = {}
        self.moved: set[str] = set()
        self.entries: list[tuple[Any, ...]] = []

    def run(self, batch: Batch) -> None:
        for op, args, kwargs in batch.ops:
            method = getattr(self, op, None) if op in BATCH_OPS else None
            if method is None:
                raise StoreError(f"unknown batch op {op!r}")
            if op == "create_instance":
                kwargs = {**kwargs, "skip_duplicate": True}
            method(*args, **kwargs)

    def flush(self) -> None:
        if self.entries:
            self.c.executemany(f"INSERT INTO journal ({JOURNAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.entries)
        if self.moved:
            self.c.executemany(
                "UPDATE instances SET last_seq = ? WHERE id = ?", [(self.last_seq[i], i) for i in self.moved]
            )

    def require(self, instance_id: str) -> None:
        if instance_id not in self.last_seq:
            row = self.c.execute("SELECT last_seq FROM instances WHERE id = ?", (instance_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no instance with id {instance_id!r}")
            self.last_seq[instance_id] = row[0]

    def create_instance(
        self, instance: Instance, started: NewEntry, task: TaskRecord | None = None, *, skip_duplicate: bool
    ) -> bool:
        i = instance
        kind, status = Kind(i.kind), InstanceStatus(i.status)
        if started.instance_id != i.id:
            raise StoreError(f"started entry for {started.instance_id!r} given with instance {i.id!r}")
        if kind is Kind.WORKFLOW and i.custom_id is not None and not status.finished:
            taken = self.c.execute(
                f"SELECT 1 FROM instances WHERE env = ? AND name = ? AND custom_id = ? AND kind = 'workflow'"
                f" AND custom_id IS NOT NULL AND {UNFINISHED_SQL}",
                (i.env, i.name, i.custom_id),
            ).fetchone()
            if taken:
                if skip_duplicate:
                    return False
                raise _duplicate(i.name, i.custom_id, i.env)
        try:
            self.c.execute(
                f"INSERT INTO instances ({INSTANCE_COLS}, ready, last_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                (i.id, kind.value, i.name, i.version, i.custom_id, i.env, status.value, i.data, i.properties,
                 i.error, i.parent_id, i.parent_position, i.created_at, i.updated_at, int(kind is Kind.WORKFLOW)),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(f"cannot create instance {i.id!r}: {e}") from e
        self.last_seq[i.id] = 0
        self.append(started)
        self.moved.discard(i.id)  # inserted with last_seq = 1 already
        if task is not None:
            self.add_task(task)
        return True

    def append(self, entry: NewEntry) -> None:
        self.require(entry.instance_id)
        seq = self.last_seq[entry.instance_id] = self.last_seq[entry.instance_id] + 1
        self.moved.add(entry.instance_id)
        self.entries.append((entry.instance_id, seq, Entry(entry.type).value, entry.position, entry.name,
                             entry.data, entry.properties, self.now()))

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        sets: list[str] = ["updated_at = ?"]
        params: list[Any] = [self.now()]
        if status is not None:
            sets.append("status = ?")
            params.append(InstanceStatus(status).value)
        if properties is not UNSET:
            sets.append("properties = ?")
            params.append(properties)
        if error is not UNSET:
            sets.append("error = ?")
            params.append(error)
        try:
            cur = self.c.execute(f"UPDATE instances SET {', '.join(sets)} WHERE id = ?", (*params, instance_id))
        except sqlite3.IntegrityError as e:  # back to unfinished while its custom id is taken again
            env, name, custom_id = self.c.execute(
                "SELECT env, name, custom_id FROM instances WHERE id = ?", (instance_id,)
            ).fetchone()
            raise _duplicate(name, custom_id, env) from e
        if cur.rowcount == 0:
            raise NotFoundError(f"no instance with id {instance_id!r}")

    def add_task(self, task: TaskRecord) -> None:
        t = task
        self.require(t.instance_id)
        try:
            self.c.execute(
                f"INSERT INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (t.id, t.instance_id, t.position, t.name, t.data, TaskStatus(t.status).value, t.retry_index,
                 t.attempts, t.run_at, t.created_at),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(f"cannot add task {t.id!r}: {e}") from e

    def update_task(
        self, task_id: str, *, status: TaskStatus | None = None, retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        cur = self.c.execute(
            "UPDATE tasks SET status = coalesce(?, status), retry_index = coalesce(?, retry_index),"
            " run_at = coalesce(?, run_at) WHERE id = ?",
            (None if status is None else TaskStatus(status).value, retry_index, run_at, task_id),
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no task with id {task_id!r}")

    def cancel_tasks(self, instance_id: str) -> None:
        self.require(instance_id)
        self.c.execute(
            "UPDATE tasks SET status = 'cancelled' WHERE instance_id = ? AND status IN ('queued', 'running')",
            (instance_id,),
        )

    def add_timer(self, timer: Timer) -> None:
        """A timer replaces any timer at the same instance and position."""
        self.require(timer.instance_id)
        self.c.execute(
            "INSERT OR REPLACE INTO timers (instance_id, position, fire_at) VALUES (?, ?, ?)",
            (timer.instance_id, timer.position, timer.fire_at),
        )

    def delete_timer(self, instance_id: str, position: int) -> None:
        self.require(instance_id)
        self.c.execute("DELETE FROM timers WHERE instance_id = ? AND position = ?", (instance_id, position))

    def delete_timers(self, instance_id: str) -> None:
        self.require(instance_id)
        self.c.execute("DELETE FROM timers WHERE instance_id = ?", (instance_id,))

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        self.require(instance_id)
        self.c.executemany(
            "DELETE FROM inbox WHERE id = ? AND instance_id = ?", [(item_id, instance_id) for item_id in item_ids]
        )
        self.c.execute(
            "UPDATE instances SET ready = EXISTS (SELECT 1 FROM inbox WHERE instance_id = ?) WHERE id = ?",
            (instance_id, instance_id),
        )

    def post(self, instance_id: str, kind: str, name: str | None = None, data: str | None = None) -> int:
        self.require(instance_id)
        cur = self.c.execute(
            "INSERT INTO inbox (instance_id, kind, name, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (instance_id, kind, name, data, self.now()),
        )
        self.c.execute("UPDATE instances SET ready = 1 WHERE id = ?", (instance_id,))
        return int(cur.lastrowid or 0)


BATCH_OPS = frozenset({
    "create_instance", "append", "update_instance", "add_task", "update_task", "cancel_tasks",
    "add_timer", "delete_timer", "delete_timers", "consume_inbox", "post",
})


def _duplicate(name: str, custom_id: str, env: str) -> DuplicateInstanceError:
    return DuplicateInstanceError(
        f"workflow {name!r} already has an unfinished instance with id {custom_id!r} (env {env!r})"
    )


def _instance(r: Any) -> Instance:
    return Instance(r[0], Kind(r[1]), r[2], r[3], r[4], r[5], InstanceStatus(r[6]), *r[7:])


def _task(r: Any) -> TaskRecord:
    return TaskRecord(r[0], r[1], r[2], r[3], r[4], TaskStatus(r[5]), r[6], r[7], r[8], r[9])


def _is_locked(e: Exception) -> bool:
    message = str(e).lower()
    return "locked" in message or "busy" in message


def _chmod_quietly(path: str, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:
        pass  # absent, or another user's file: SQLite already gives it the db file's mode


def _prepare_file(path: str) -> None:
    """Create the directory (0700) and an empty db file (0600); refuse a file that is not SQLite."""
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
        _check_header(path)
        return
    except OSError as e:
        raise StoreError(f"cannot create the store {path}: {e}") from e
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
    finally:
        os.close(fd)


def _check_header(path: str) -> None:
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise StoreError(f"cannot read the store {path}: {e}") from e
    if header and header != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database; refusing to open it as a zenaton store")

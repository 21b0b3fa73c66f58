"""Moving a SQLite store to PostgreSQL (``zenaton migrate --to``): a copy, then its check.

``copy`` reads the SQLite file read-only, in one read transaction (one consistent state), and
writes every table but ``daemons`` into an empty PostgreSQL store in one transaction (``COPY``,
table by table, in batches): a failure anywhere rolls it all back, and nothing is left written.
The PostgreSQL schema is made by opening the target with ``PostgresStore`` first (it migrates an
empty database); a database whose zenaton tables hold any row is refused, as is one whose
``zenaton`` schema holds another application's tables. Every value is kept as it is: ids, seqs,
insertion orders (``ord``, inbox ids) and times; the identity sequences then continue after the
highest value SQLite ever handed out (its ``sqlite_sequence`` for the inbox).

``verify`` compares the two stores through the Store protocol: the rows of each table counted,
then for every instance its ``inspect --json`` view with every run, its record, its journal
entries (times the view does not show included), its tasks and its inbox, and the schedules.
The caller (the CLI) holds the daemon's lock on the SQLite store throughout.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.request import pathname2url

import psycopg
from psycopg.conninfo import conninfo_to_dict

from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import ArchivedRun, Instance, JournalEntry
from zenaton_runtime.store import Store
from zenaton_runtime.store.postgres import CONNECT_TIMEOUT, PostgresStore, _reason, describe
from zenaton_runtime.store.postgres_schema import DAEMON_LOCK, SCHEMA
from zenaton_runtime.store.schema import LATEST as SQLITE_LATEST
from zenaton_runtime.store.schema import current_version
from zenaton_runtime.store.sqlite_readonly import ReadOnlySQLiteStore

BATCH = 5000  # rows read from SQLite and written to PostgreSQL at a time
CHUNK = 500  # instances compared at a time by one verifying thread

# An instance as a person reads it: the CLI passes ``inspect --json --all-runs``'s view
# (``client.inspect_views.instance_view``, a layer above the store).
View = Callable[[Instance, list[JournalEntry], list[ArchivedRun]], object]

# The tables copied, in this order, with their columns (the same names on both sides).
TABLES: dict[str, tuple[str, ...]] = {
    table: tuple(columns.split())
    for table, columns in {
        "instances": "ord id kind name version custom_id env status data properties error parent_id"
        " parent_position created_at updated_at ready last_seq",
        "journal": "instance_id seq type position name data properties created_at",
        "journal_archive": "instance_id run seq type position name data properties created_at archived_at",
        "tasks": "ord id instance_id position name data status retry_index attempts run_at created_at",
        "timers": "instance_id position fire_at",
        "inbox": "id instance_id kind name data created_at",
        "schedules": "ord id env kind name custom_id data cron timezone next_fire last_fire fires skips last_skip"
        " created_at",
    }.items()
}
# Each table's primary key: the order rows are read in (and the batches' order).
ORDER = {
    "instances": "ord",
    "journal": "instance_id, seq",
    "journal_archive": "instance_id, run, seq",
    "tasks": "ord",
    "timers": "instance_id, position",
    "inbox": "id",
    "schedules": "ord",
}
IDENTITIES = {"instances": "ord", "tasks": "ord", "inbox": "id", "schedules": "ord"}
CHECKED_EMPTY = (*TABLES, "daemons")  # a target with a row in any of these is not empty


@dataclass
class Copied:
    """What ``copy`` wrote: rows per table, and how long it took."""

    rows: dict[str, int]
    seconds: float


@dataclass
class Verification:
    """What ``verify`` found: rows per table on each side, and the differences (empty: equal)."""

    sqlite_rows: dict[str, int]
    postgres_rows: dict[str, int]
    instances: int = 0
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences


def open_source(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """The SQLite store at ``path`` opened read-only (``mode=ro``, ``query_only``), at this
    engine's schema version (an older store is refused: start it once with this zenaton)."""
    ReadOnlySQLiteStore(path).close()  # a missing file, not a store, an older schema: refused here
    absolute = os.path.abspath(os.fspath(path))
    try:
        conn = sqlite3.connect(f"file:{pathname2url(absolute)}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA busy_timeout = 5000")
        if current_version(conn) != SQLITE_LATEST:
            raise StoreError(f"{absolute} has a schema version this zenaton does not copy")
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the store {absolute}: {e}") from None
    return conn


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[list[tuple[Any, ...]]]:
    columns = ", ".join(TABLES[table])
    cursor = conn.execute(f"SELECT {columns} FROM {table} ORDER BY {ORDER[table]}")
    while batch := cursor.fetchmany(BATCH):
        yield batch


def _next_values(conn: sqlite3.Connection) -> dict[str, int]:
    """Per table with an identity, the highest value SQLite handed out (0: none)."""
    highest = {
        table: int(conn.execute(f"SELECT coalesce(max({col}), 0) FROM {table}").fetchone()[0])
        for table, col in IDENTITIES.items()
    }
    has_sequence = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if has_sequence:
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence"):
            if name in highest:
                highest[name] = max(highest[name], int(seq))
    return highest


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        given = conninfo_to_dict(url)
        options: dict[str, Any] = {"autocommit": True, "application_name": "zenaton migrate"}
        if "connect_timeout" not in given:
            options["connect_timeout"] = CONNECT_TIMEOUT
        conn = psycopg.connect(url, **options)
        conn.execute(f"SET search_path = {SCHEMA}")
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to the PostgreSQL store at {describe(url)}: {_reason(e)}") from None
    return conn


def prepare_target(url: str) -> None:
    """Open the target with the PostgreSQL store (it creates or migrates the schema of an empty
    database and refuses another application's tables), then refuse it unless it is empty."""
    PostgresStore(url).close()
    conn = _connect(url)
    try:
        filled = _filled(conn)
    finally:
        conn.close()
    if filled:
        raise StoreError(
            f"the PostgreSQL store at {describe(url)} is not empty ({filled}); migrate copies into an empty one"
        )


def _filled(conn: psycopg.Connection[Any]) -> str:
    """'' when every zenaton table is empty, else which tables hold rows."""
    held = []
    for table in CHECKED_EMPTY:
        row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
        if row and row[0]:
            held.append(f"{row[0]} row(s) in {table}")
    return ", ".join(held)


def migrate(source: str | os.PathLike[str], url: str, view: View) -> tuple[Copied, Verification]:
    """``copy``, then ``verify``; a copy that differs is removed again (``empty_target``). The
    PostgreSQL daemon lock is held throughout: no daemon starts on the copy before it is checked."""
    open_source(source).close()  # a missing or unreadable store: refused before the target is touched
    prepare_target(url)
    guard = _connect(url)
    try:
        _take_daemon_lock(guard, url)
        copied = copy(source, url, lock=False)
        checked = verify(source, url, view)
        if not checked.ok:
            empty_target(url)
    finally:
        guard.close()  # the advisory lock goes with the session
    return copied, checked


def _take_daemon_lock(conn: psycopg.Connection[Any], url: str) -> None:
    try:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK,)).fetchone()
    except psycopg.Error as e:
        raise StoreError(f"store {describe(url)}: {_reason(e)}") from None
    if not (locked and locked[0]):
        raise StoreError(f"a daemon runs on the PostgreSQL store at {describe(url)}; stop it first")


def copy(
    source: str | os.PathLike[str],
    url: str,
    *,
    lock: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> Copied:
    """Copy the SQLite store at ``source`` into the empty PostgreSQL store at ``url``, all in one
    transaction. Raises StoreError, with nothing written, if the target is not empty, a daemon
    holds it, or anything fails. ``lock``: take the daemon lock for the copy (False: the caller
    holds it). ``progress(table, rows)`` is told after each table."""
    started = time.monotonic()
    prepare_target(url)
    src = open_source(source)
    conn = _connect(url)
    where = describe(url)
    rows: dict[str, int] = {}
    try:
        if lock:
            _take_daemon_lock(conn, url)
        src.execute("BEGIN")  # one read transaction: one consistent state of the file
        try:
            with conn.transaction():
                # No other writer meanwhile (a CLI dispatch): the tables are ours until COMMIT.
                conn.execute("LOCK TABLE " + ", ".join(CHECKED_EMPTY) + " IN EXCLUSIVE MODE")
                if filled := _filled(conn):
                    raise StoreError(f"the PostgreSQL store at {where} is not empty ({filled})")
                for table, columns in TABLES.items():
                    rows[table] = _copy_table(src, conn, table, columns)
                    if progress:
                        progress(table, rows[table])
                for table, value in _next_values(src).items():
                    column = IDENTITIES[table]
                    # the next value handed out is the one after the highest SQLite used
                    conn.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                        (f"{SCHEMA}.{table}", column, max(value, 1), value > 0),
                    )
        finally:
            src.execute("COMMIT")
    except psycopg.Error as e:
        if isinstance(e, psycopg.DataError) and "0x00" in str(e):
            raise StoreError(
                f"cannot copy to {where}: a text holds a NUL character, which PostgreSQL cannot store;"
                " nothing was copied"
            ) from None
        raise StoreError(f"cannot copy to {where}: {_reason(e)}; nothing was copied") from None
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the store {source}: {e}; nothing was copied") from None
    finally:
        conn.close()  # and the advisory lock with the session
        src.close()
    return Copied(rows, time.monotonic() - started)


def _copy_table(src: sqlite3.Connection, conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...]) -> int:
    ready = columns.index("ready") if table == "instances" else -1
    count = 0
    with conn.cursor() as cursor, cursor.copy(f"COPY {SCHEMA}.{table} ({', '.join(columns)}) FROM STDIN") as out:
        for batch in _rows(src, table):
            for row in batch:
                if ready >= 0:
                    row = (*row[:ready], bool(row[ready]), *row[ready + 1 :])
                out.write_row(row)
            count += len(batch)
    return count


def table_rows_sqlite(source: str | os.PathLike[str]) -> dict[str, int]:
    src = open_source(source)
    try:
        return {table: int(src.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in TABLES}
    finally:
        src.close()


def table_rows_postgres(url: str) -> dict[str, int]:
    conn = _connect(url)
    try:
        result = {}
        for table in TABLES:
            row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
            result[table] = int(row[0]) if row else 0
        return result
    except psycopg.Error as e:
        raise StoreError(f"cannot count the rows of {describe(url)}: {_reason(e)}") from None
    finally:
        conn.close()


# What no record holds, compared row by row: the insertion orders, the ready flag, the last seq.
INTERNAL = {
    "instances": "SELECT id, ord, ready, last_seq FROM instances",
    "tasks": "SELECT id, ord, instance_id FROM tasks",
}


def _internal_differences(source: str | os.PathLike[str], url: str) -> list[str]:
    src = open_source(source)
    conn = _connect(url)
    differences = []
    try:
        for table, sql in INTERNAL.items():
            lite = {r[0]: tuple(int(v) if isinstance(v, bool) else v for v in r[1:]) for r in src.execute(sql)}
            copied = {
                r[0]: tuple(int(v) if isinstance(v, bool) else v for v in r[1:])
                for r in conn.execute(sql.replace(" FROM ", f" FROM {SCHEMA}."))
            }
            for key in sorted(k for k in lite.keys() & copied.keys() if lite[k] != copied[k]):
                if table == "instances":
                    differences.append(f"instance {key}: its insertion order, ready flag or last seq differs")
                else:
                    differences.append(f"instance {lite[key][1]}: the insertion order of its task {key} differs")
    except psycopg.Error as e:
        raise StoreError(f"cannot read {describe(url)}: {_reason(e)}") from None
    finally:
        conn.close()
        src.close()
    return differences


def verify(source: str | os.PathLike[str], url: str, view: View, *, limit: int = 20, workers: int = 4) -> Verification:
    """Compare the SQLite store at ``source`` with its copy at ``url``: rows per table, then every
    instance's ``view`` (the CLI's: ``inspect --json --all-runs``), record, journal, archive, tasks and inbox,
    and the schedules, read through the Store protocol on each side. The instances go in chunks
    to ``workers`` threads, each with its own pair of stores (the reads wait on the server, not
    on Python). At most ``limit`` differences are listed, in the instances' order."""
    started = time.monotonic()
    result = Verification(table_rows_sqlite(source), table_rows_postgres(url))
    for table in TABLES:
        a, b = result.sqlite_rows[table], result.postgres_rows[table]
        if a != b:
            result.differences.append(f"table {table}: {a} row(s) in SQLite, {b} in PostgreSQL")
    result.differences.extend(_internal_differences(source, url))
    lite: Store = ReadOnlySQLiteStore(source)
    try:
        pg: Store = PostgresStore(url)
        try:
            ids = [i.id for i in lite.list_instances()]
            copied = {i.id for i in pg.list_instances()}
            for missing in sorted(copied.symmetric_difference(ids)):
                side = "PostgreSQL" if missing in copied else "SQLite"
                result.differences.append(f"instance {missing}: only in {side}")
            if lite.list_schedules() != pg.list_schedules():
                result.differences.append("the schedules differ")
        finally:
            pg.close()
    finally:
        lite.close()
    chunks = [ids[n : n + CHUNK] for n in range(0, len(ids), CHUNK)]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
        pairs: list[tuple[Store, Store]] = []
        lock = threading.Lock()
        local = threading.local()

        def compare(chunk: list[str]) -> list[str]:
            if not hasattr(local, "stores"):
                local.stores = (ReadOnlySQLiteStore(source), PostgresStore(url))
                with lock:
                    pairs.append(local.stores)
            mine: tuple[Store, Store] = local.stores
            return _compare(mine[0], mine[1], chunk, view)

        try:
            for found in pool.map(compare, chunks):
                result.differences.extend(found)
        finally:
            pool.shutdown(wait=True)
            for pair in pairs:
                for store in pair:
                    store.close()
    result.instances = len(ids)
    del result.differences[limit:]
    result.seconds = time.monotonic() - started
    return result


def _compare(lite: Store, pg: Store, ids: list[str], view: View) -> list[str]:
    """The differences of these instances between the two stores."""
    differences = []
    records, copies = lite.get_instances(ids), pg.get_instances(ids)
    inboxes, copied_inboxes = lite.inboxes(ids), pg.inboxes(ids)
    for instance_id in ids:
        a, b = records.get(instance_id), copies.get(instance_id)
        if a is None or b is None:
            continue  # counted already
        journal, archive = lite.journal(a.id), lite.archive(a.id)
        copied_journal, copied_archive = pg.journal(b.id), pg.archive(b.id)
        if view(a, journal, archive) != view(b, copied_journal, copied_archive):
            differences.append(f"instance {instance_id}: its inspect view differs")
        elif a != b:
            differences.append(f"instance {instance_id}: its record differs")
        elif journal != copied_journal or archive != copied_archive:  # what the view does not show
            differences.append(f"instance {instance_id}: its journal differs")
        elif lite.tasks_of(a.id) != pg.tasks_of(b.id):
            differences.append(f"instance {instance_id}: its tasks differ")
        elif inboxes.get(instance_id) != copied_inboxes.get(instance_id):
            differences.append(f"instance {instance_id}: its inbox differs")
    return differences


def empty_target(url: str) -> None:
    """Remove every copied row again (after a failed verification): the target is left empty."""
    conn = _connect(url)
    try:
        conn.execute("TRUNCATE " + ", ".join(f"{SCHEMA}.{t}" for t in TABLES) + " RESTART IDENTITY")
    except psycopg.Error as e:
        raise StoreError(f"cannot empty {describe(url)} again: {_reason(e)}") from None
    finally:
        conn.close()

"""The SQLite schema: an append-only list of migrations and a one-row version table.

Never edit or reorder a released migration; add a new one at the end. Migration
``n`` (1-based) brings the database from version ``n - 1`` to ``n``, in one
``BEGIN IMMEDIATE`` transaction, so concurrent processes opening the same file
migrate it exactly once.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from zenaton_runtime.models import OPEN_TASKS, UNFINISHED

VERSION_TABLE = "schema_version"


def _status_in(statuses: tuple[enum.Enum, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


# A query uses a partial index only when its WHERE holds the index's condition word for word.
QUEUED_TASK = "status = 'queued'"
OPEN_TASK = _status_in(OPEN_TASKS)  # "status IN ('queued', 'running', 'failed')"
# Tasks of a paused instance stay queued: a pause starts nothing new, retries included.
RUNNING_INSTANCE = "EXISTS (SELECT 1 FROM instances i WHERE i.id = tasks.instance_id AND i.status = 'running')"
CLAIMABLE = f"{QUEUED_TASK} AND run_at <= ? AND {RUNNING_INSTANCE}"
UNFINISHED_SQL = _status_in(UNFINISHED)  # "status IN ('running', 'paused')", the partial unique index's
FINISHED_SQL = "status IN ('completed', 'killed', 'failed')"  # what retention may remove (InstanceStatus.finished)

_BOOTSTRAP = [
    f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    f"INSERT OR IGNORE INTO {VERSION_TABLE} (id, version) VALUES (1, 0)",
]

MIGRATIONS: list[list[str]] = [
    # 1: initial schema
    [
        # ord is the insertion order (an INTEGER PRIMARY KEY survives VACUUM, a bare rowid may not).
        """CREATE TABLE instances (
            ord INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT,
            custom_id TEXT,
            env TEXT NOT NULL,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            properties TEXT,
            error TEXT,
            parent_id TEXT,
            parent_position INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            ready INTEGER NOT NULL DEFAULT 0,
            last_seq INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX instances_created ON instances (created_at)",
        "CREATE INDEX instances_ready ON instances (created_at) WHERE ready = 1",
        "CREATE INDEX instances_parent ON instances (parent_id) WHERE parent_id IS NOT NULL",
        """CREATE UNIQUE INDEX instances_unfinished_custom_id ON instances (env, name, custom_id)
            WHERE kind = 'workflow' AND custom_id IS NOT NULL AND status IN ('running', 'paused')""",
        """CREATE TABLE journal (
            instance_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            position INTEGER,
            name TEXT,
            data TEXT,
            properties TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (instance_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE tasks (
            ord INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            instance_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            status TEXT NOT NULL,
            retry_index INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            run_at REAL NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX tasks_status_run_at ON tasks (status, run_at)",
        "CREATE INDEX tasks_instance ON tasks (instance_id)",
        """CREATE TABLE timers (
            instance_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            fire_at REAL NOT NULL,
            PRIMARY KEY (instance_id, position)
        )""",
        "CREATE INDEX timers_fire_at ON timers (fire_at)",
        # AUTOINCREMENT: an id handed to the daemon is never reused, even after deletes.
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT,
            data TEXT,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX inbox_instance ON inbox (instance_id)",
    ],
    # 2: cron schedules
    [
        """CREATE TABLE schedules (
            ord INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            env TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            custom_id TEXT,
            data TEXT NOT NULL,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            next_fire REAL NOT NULL,
            last_fire REAL,
            fires INTEGER NOT NULL DEFAULT 0,
            skips INTEGER NOT NULL DEFAULT 0,
            last_skip REAL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX schedules_next_fire ON schedules (next_fire)",
    ],
    # 3: rewind: journal entries moved out of a run, by run number (1 is the original run)
    [
        """CREATE TABLE journal_archive (
            instance_id TEXT NOT NULL,
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            position INTEGER,
            name TEXT,
            data TEXT,
            properties TEXT,
            created_at REAL NOT NULL,
            archived_at REAL NOT NULL,
            PRIMARY KEY (instance_id, run, seq)
        ) WITHOUT ROWID""",
    ],
    # 4: where_id() looks instances up by custom id (the unique index covers unfinished ones only)
    [
        "CREATE INDEX instances_custom_id ON instances (env, name, custom_id) WHERE custom_id IS NOT NULL",
    ],
    # 5: the daemon only looks tasks up while they are open: small partial indexes, so that a commit
    # touches a few index pages instead of one per task (done and cancelled tasks leave them)
    [
        "DROP INDEX tasks_status_run_at",
        "DROP INDEX tasks_instance",
        f"CREATE INDEX tasks_queued ON tasks (run_at) WHERE {QUEUED_TASK}",
        f"CREATE INDEX tasks_open_by_instance ON tasks (instance_id) WHERE {OPEN_TASK}",
    ],
    # 6: each running daemon's record, written every few seconds (models.DaemonRecord)
    [
        """CREATE TABLE daemons (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            env TEXT NOT NULL,
            version TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            workers INTEGER NOT NULL,
            busy_workers INTEGER NOT NULL,
            instances_held INTEGER NOT NULL,
            queue_depth INTEGER NOT NULL,
            steps INTEGER NOT NULL,
            steps_per_second REAL NOT NULL,
            stats TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX instances_by_name_status ON instances (kind, name, status, env)",
    ],
    # 7: retention: finished instances by last update (a partial index: running ones never touch it),
    # and every task of an instance (a prune deletes done tasks too; inspect reads them)
    [
        f"CREATE INDEX instances_finished ON instances (updated_at) WHERE {FINISHED_SQL}",
        "CREATE INDEX tasks_by_instance ON tasks (instance_id)",
    ],
]

LATEST = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int | None:
    """The stored version, or None when the version table does not exist."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)).fetchone()
    if row is None:
        return None
    row = conn.execute(f"SELECT version FROM {VERSION_TABLE} WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def migrate(conn: sqlite3.Connection, transaction: Callable[[], AbstractContextManager[object]]) -> int:
    """Apply the missing migrations, one ``transaction()`` each; idempotent. Returns the version.

    ``transaction`` is the store's write-transaction context manager (``BEGIN IMMEDIATE``).
    """
    with transaction():
        for statement in _BOOTSTRAP:
            conn.execute(statement)
    for number in range((current_version(conn) or 0) + 1, LATEST + 1):
        with transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            if conn.execute(f"SELECT version FROM {VERSION_TABLE} WHERE id = 1").fetchone()[0] < number:
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute(f"UPDATE {VERSION_TABLE} SET version = ? WHERE id = 1", (number,))
    return current_version(conn) or 0

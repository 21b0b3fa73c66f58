"""The PostgreSQL schema: an append-only list of migrations and a one-row version table.

Every table lives in the schema ``zenaton`` of the database (the connection's ``search_path``),
so a database an application already uses keeps its own names. Never edit or reorder a released
migration; add a new one at the end. Migration ``n`` (1-based) brings the database from version
``n - 1`` to ``n`` in one transaction that first takes the advisory lock ``MIGRATION_LOCK``
(``pg_advisory_xact_lock``): two processes opening the store at once migrate it exactly once,
the second waiting for the first and then finding nothing left to do.

The tables are those of the SQLite backend (``schema.py``), column for column, so that every
backend returns the same records: times are ``double precision`` unix seconds, names and ids
compare byte by byte (``COLLATE "C"``, as SQLite and Python do), the insertion order is an
identity column ``ord``.
"""

from __future__ import annotations

from psycopg import Connection as PgConnection
from psycopg.rows import TupleRow

Connection = PgConnection[TupleRow]

SCHEMA = "zenaton"
VERSION_TABLE = "schema_version"
MIGRATION_LOCK = 0x7A656E61746F6E01  # pg_advisory_xact_lock key of migrations ("zenaton", 1)
# Held shared by every daemon on the database (``PostgresStore.take_lease``), exclusively by
# ``zenaton migrate`` while it copies: a migration never runs beside a daemon.
DAEMON_LOCK = 0x7A656E61746F6E02

# Conditions written once; the partial indexes below hold the same words.
QUEUED_TASK = "status = 'queued'"
OPEN_TASK = "status IN ('queued', 'running', 'failed')"  # models.OPEN_TASKS
UNFINISHED_SQL = "status IN ('running', 'paused')"  # models.UNFINISHED: holds its custom id
FINISHED_SQL = "status IN ('completed', 'killed', 'failed')"  # InstanceStatus.finished: what retention removes
# Tasks of a paused instance stay queued: a pause starts nothing new, retries included.
# A task's instance is looked up by its id, one probe of the unique index per task: written as a
# scalar subquery, never as EXISTS, which the planner may turn into a scan of every instance a
# daemon owns for each task when its statistics are young (a new or fast-growing database).
RUNNING_INSTANCE = "(SELECT i.status = 'running' FROM instances i WHERE i.id = tasks.instance_id)"
# The same, of an instance a lease holds (a daemon's reads: postgres_leases.py); NULL, so false,
# when it has no owner.
OWNED_RUNNING_INSTANCE = (
    "(SELECT i.status = 'running' AND i.owner = %s FROM instances i WHERE i.id = tasks.instance_id)"
)
CLAIMABLE = f"{QUEUED_TASK} AND run_at <= %s AND {RUNNING_INSTANCE}"
OWNED_CLAIMABLE = f"{QUEUED_TASK} AND run_at <= %s AND {OWNED_RUNNING_INSTANCE}"
# What a daemon claims (postgres_leases.py): an instance with work to come, or a request waiting.
CLAIMABLE_INSTANCE = f"{UNFINISHED_SQL} OR ready"
CUSTOM_ID_INDEX = "instances_unfinished_custom_id"
CUSTOM_ID_TARGET = f"(env, name, custom_id) WHERE kind = 'workflow' AND custom_id IS NOT NULL AND {UNFINISHED_SQL}"

ID = 'TEXT COLLATE "C"'  # ids, names, statuses: compared and sorted byte by byte


def idle_limit(ttl: float) -> str:
    """A daemon's session ends (the server rolls back its transaction) when it leaves a transaction
    open this long: a daemon frozen in the middle of a step (SIGSTOP, a pause) must not hold the
    row locks of its instances past its lease, or no other daemon could take them over. Its own
    steps never wait between two statements anywhere near that long."""
    return f"SET idle_in_transaction_session_timeout = {max(1000, int(ttl * 1000 / 3))}"


_BOOTSTRAP = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{VERSION_TABLE} (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    f"INSERT INTO {SCHEMA}.{VERSION_TABLE} (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
]

MIGRATIONS: list[list[str]] = [
    # 1: the schema of SQLite's six migrations, at once
    [
        f"""CREATE TABLE instances (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id {ID} NOT NULL UNIQUE,
            kind {ID} NOT NULL,
            name {ID} NOT NULL,
            version TEXT,
            custom_id {ID},
            env {ID} NOT NULL,
            status {ID} NOT NULL,
            data TEXT NOT NULL,
            properties TEXT,
            error TEXT,
            parent_id {ID},
            parent_position INTEGER,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            ready BOOLEAN NOT NULL DEFAULT false,
            last_seq INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX instances_created ON instances (created_at, ord)",
        "CREATE INDEX instances_ready ON instances (created_at, ord) WHERE ready",
        "CREATE INDEX instances_parent ON instances (parent_id) WHERE parent_id IS NOT NULL",
        f"CREATE UNIQUE INDEX {CUSTOM_ID_INDEX} ON instances {CUSTOM_ID_TARGET}",
        "CREATE INDEX instances_custom_id ON instances (env, name, custom_id) WHERE custom_id IS NOT NULL",
        "CREATE INDEX instances_by_name_status ON instances (kind, name, status, env)",
        f"""CREATE TABLE journal (
            instance_id {ID} NOT NULL,
            seq INTEGER NOT NULL,
            type {ID} NOT NULL,
            position INTEGER,
            name TEXT,
            data TEXT,
            properties TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (instance_id, seq)
        )""",
        f"""CREATE TABLE journal_archive (
            instance_id {ID} NOT NULL,
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            type {ID} NOT NULL,
            position INTEGER,
            name TEXT,
            data TEXT,
            properties TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            archived_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (instance_id, run, seq)
        )""",
        f"""CREATE TABLE tasks (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id {ID} NOT NULL UNIQUE,
            instance_id {ID} NOT NULL,
            position INTEGER NOT NULL,
            name {ID} NOT NULL,
            data TEXT NOT NULL,
            status {ID} NOT NULL,
            retry_index INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            run_at DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        # the claim reads the queue; the daemon looks an instance's tasks up only while they are
        # open (small partial indexes); inspection reads all of an instance's tasks
        f"CREATE INDEX tasks_queued ON tasks (run_at, ord) WHERE {QUEUED_TASK}",
        f"CREATE INDEX tasks_open_by_instance ON tasks (instance_id) WHERE {OPEN_TASK}",
        "CREATE INDEX tasks_by_instance ON tasks (instance_id, ord)",
        f"""CREATE TABLE timers (
            instance_id {ID} NOT NULL,
            position INTEGER NOT NULL,
            fire_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (instance_id, position)
        )""",
        "CREATE INDEX timers_fire_at ON timers (fire_at)",
        # an identity: an id handed to the daemon is never reused, even after deletes
        f"""CREATE TABLE inbox (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            instance_id {ID} NOT NULL,
            kind {ID} NOT NULL,
            name TEXT,
            data TEXT,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX inbox_instance ON inbox (instance_id, id)",
        f"""CREATE TABLE schedules (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id {ID} NOT NULL UNIQUE,
            env {ID} NOT NULL,
            kind {ID} NOT NULL,
            name {ID} NOT NULL,
            custom_id TEXT,
            data TEXT NOT NULL,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            next_fire DOUBLE PRECISION NOT NULL,
            last_fire DOUBLE PRECISION,
            fires INTEGER NOT NULL DEFAULT 0,
            skips INTEGER NOT NULL DEFAULT 0,
            last_skip DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX schedules_next_fire ON schedules (next_fire, ord)",
        f"""CREATE TABLE daemons (
            id {ID} PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            env TEXT NOT NULL,
            version TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            workers INTEGER NOT NULL,
            busy_workers INTEGER NOT NULL,
            instances_held INTEGER NOT NULL,
            queue_depth INTEGER NOT NULL,
            steps BIGINT NOT NULL,
            steps_per_second DOUBLE PRECISION NOT NULL,
            stats TEXT NOT NULL
        )""",
    ],
    # 2: retention: finished instances by last update (a partial index: running ones never touch it)
    [
        f"CREATE INDEX instances_finished ON instances (updated_at) WHERE {FINISHED_SQL}",
    ],
    # 3: several daemons: a lease per daemon run, an owner and an epoch per instance (see
    # postgres_leases.py). Only an unfinished or ready instance has an owner.
    [
        f"""CREATE TABLE leases (
            id {ID} PRIMARY KEY,
            until DOUBLE PRECISION NOT NULL,
            backend INTEGER,
            backend_start DOUBLE PRECISION
        )""",
        f"ALTER TABLE instances ADD COLUMN owner {ID}",
        "ALTER TABLE instances ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX instances_owned ON instances (owner) WHERE owner IS NOT NULL",
        f"CREATE INDEX instances_unowned ON instances (ord) WHERE owner IS NULL AND ({CLAIMABLE_INSTANCE})",
    ],
]

LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int | None:
    """The stored version, or None when the version table does not exist."""
    # The catalog read by a query, not to_regclass(): a session's cached catalog may not show
    # yet what another one just committed (here, while it waited for the migration lock).
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (SCHEMA, VERSION_TABLE),
    ).fetchone()
    if row is None:
        return None
    row = conn.execute(f"SELECT version FROM {SCHEMA}.{VERSION_TABLE} WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


class ForeignSchema(Exception):
    """The zenaton schema holds tables but no version table: another application's."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tables


def foreign_tables(conn: Connection) -> list[str]:
    """The tables of the zenaton schema (when it has no version table: another application's)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname",
        (SCHEMA,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def migrate(conn: Connection) -> int:
    """Apply the missing migrations, one transaction each under the migration lock; idempotent.
    Returns the version. ``conn`` is in autocommit mode, its search_path the zenaton schema.
    Raises ForeignSchema, writing nothing, when the schema holds tables but no version table."""
    if current_version(conn) is None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            # Under the lock: another process may have created the tables meanwhile.
            if current_version(conn) is None:
                if tables := foreign_tables(conn):
                    raise ForeignSchema(tables)
                for statement in _BOOTSTRAP:
                    conn.execute(statement)
    for number in range((current_version(conn) or 0) + 1, LATEST + 1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            # Read again under the lock: another process may have migrated meanwhile.
            row = conn.execute(f"SELECT version FROM {SCHEMA}.{VERSION_TABLE} WHERE id = 1 FOR UPDATE").fetchone()
            if row is not None and int(row[0]) < number:
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute(f"UPDATE {SCHEMA}.{VERSION_TABLE} SET version = %s WHERE id = 1", (number,))
    return current_version(conn) or 0

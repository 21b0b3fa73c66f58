"""Committing a step in PostgreSQL (``PostgresStepCommits.commit_step``, a mixin of
PostgresStore), and ``changes()``.

A step is one transaction: every op of the batch (``postgres_writer.py``), then the claim of up to
``limit`` queued tasks, due and of a running instance, taken with ``FOR UPDATE SKIP LOCKED``: a
task another transaction is claiming is passed over, never waited for nor claimed twice, so
several daemons can later share one queue. The handle comes back landed: the COMMIT has returned
(this backend never commits in the background, which the protocol allows). A step that fails
is rolled back whole and raises StoreError; the engine keeps its results and tries again.
A step writes no NOTIFY: the engine knows its own work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from zenaton_runtime.models import TaskRecord, TaskStatus
from zenaton_runtime.store.ops import Batch
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.postgres_changes import Notifications
from zenaton_runtime.store.postgres_schema import CLAIMABLE, Connection
from zenaton_runtime.store.postgres_writer import Writer
from zenaton_runtime.store.sqlite_rows import TASK_COLS

# The rows to claim are picked and locked once (MATERIALIZED), then updated; RETURNING has no
# order of its own: the claimed tasks are sorted as they were picked (run_at, then insertion).
CLAIM = f"""WITH picked AS MATERIALIZED (
    SELECT ord FROM tasks WHERE {CLAIMABLE} ORDER BY run_at, ord LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET status = 'running', attempts = attempts + 1 FROM picked WHERE tasks.ord = picked.ord
RETURNING {", ".join(f"tasks.{column.strip()}" for column in TASK_COLS.split(","))}, tasks.ord"""


class PostgresStepCommits:
    """``commit_step``, ``settle`` and ``changes``: a mixin of PostgresStore (it uses its
    connection, ``_write`` and ``_error``)."""

    _conn: Connection
    _other_writes: int
    _reconnects: int
    _notifications: Notifications
    _connection: Callable[[], Connection]
    _write: Callable[..., Any]
    _error: Callable[[psycopg.Error], Exception]
    _lost: Callable[[psycopg.Error], bool]

    def commit_step(
        self, batch: Batch, now: float, limit: int, *, only_added: bool = False, background: bool = False
    ) -> PendingCommit:
        """The step and its claim in one transaction, landed when it returns (``only_added`` and
        ``background`` change nothing here: the claim query finds the batch's tasks, and the
        COMMIT is never left in flight)."""
        if not batch.ops:
            if limit <= 0:
                return PendingCommit.done([])
            return PendingCommit.done(self._write(lambda w: claim(w.c, now, limit), notify=False))

        def step(w: Writer) -> list[TaskRecord]:
            w.run(batch)
            if limit <= 0:
                return []
            w.flush()  # the batch's own task writes first
            return claim(w.c, now, limit)

        return PendingCommit.done(self._write(step, notify=False))

    def settle(self) -> None:
        """Nothing to wait for: every commit here has landed when it returns."""

    def changes(self) -> object:
        """Notifications from other sessions (LISTEN from the first call on), this store's own
        writes other than steps and heartbeats, and its reconnections (which may have missed some)."""
        try:
            conn = self._connection()
            if not self._notifications.listening:
                self._notifications.listen(conn)
            self._notifications.drain(conn)
        except psycopg.OperationalError as e:
            if not self._lost(e):
                raise self._error(e) from None
            self._conn.close()  # the next call opens another: what it missed counts as a change
            self._reconnects += 1
        except psycopg.Error as e:
            raise self._error(e) from None
        return (self._notifications.received, self._other_writes, self._reconnects)

    def wakeup_fd(self) -> int | None:
        """The connection's socket, LISTENing from now on: a notification from another session
        makes it readable, and ``changes()`` reads it off (``consume_input``), so it does not stay
        readable. None while the connection is lost: this never connects (the next step does,
        and its failure is the step's to handle); the daemon polls meanwhile. A new connection
        brings a new socket: the daemon asks each time."""
        conn = self._conn
        if conn.closed or conn.broken:
            return None
        try:
            if not self._notifications.listening:
                self._notifications.listen(conn)
            return conn.pgconn.socket
        except psycopg.Error:
            return None


def claim(c: Connection, now: float, limit: int) -> list[TaskRecord]:
    """Up to ``limit`` claimable tasks become running (attempts + 1), oldest run_at first."""
    rows = c.execute(CLAIM, (now, limit)).fetchall()
    rows.sort(key=lambda r: (r[8], r[10]))
    running = TaskStatus.RUNNING
    return [TaskRecord(r[0], r[1], r[2], r[3], r[4], running, r[6], r[7], r[8], r[9]) for r in rows]

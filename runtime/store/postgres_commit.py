"""Committing a step in PostgreSQL (``PostgresStepCommits.commit_step``, a mixin of
PostgresStore), and ``changes()``.

A step is one transaction: every op of the batch (``postgres_writer.py``), then the claim of up to
``limit`` queued tasks, due and of a running instance, taken with ``FOR UPDATE SKIP LOCKED``: a
task another transaction is claiming is passed over, never waited for nor claimed twice, so
several daemons share one queue. A step that fails is rolled back whole and raises StoreError
(from its handle's ``wait()`` when it ran in the background); the engine keeps its results and
tries again.

In the background (the daemon asks while attempts run), the whole transaction runs on a thread
on the store's connection: psycopg lets go of the GIL while it waits for the server, which is
most of a step's commit, so the engine decides the next step meanwhile. Until it lands, reads go
through a second connection (``PostgresStore._reader``), ``changes()`` says what it said when the
step started, and every other write lands the step first.

Once the store holds a lease (``postgres_leases.py``) a step is fenced: its writes as an owner
must be to instances it holds at the epoch it claimed them (``Writer``; else ``LeaseLost``, the
step refused whole), and it claims only tasks of instances it owns. A step that posts to an inbox
or creates instances then ends with a NOTIFY (naming the owners posted to): the receiver may be
another daemon's, or nobody's yet. Otherwise a step writes no NOTIFY: the engine knows its own work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg

from zenaton_runtime.models import TaskRecord, TaskStatus
from zenaton_runtime.store.commit_thread import CommitThread
from zenaton_runtime.store.ops import Batch
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.postgres_changes import Notifications, notify_daemons
from zenaton_runtime.store.postgres_leases import FOLLOWER_DELAY
from zenaton_runtime.store.postgres_schema import CLAIMABLE, OWNED_CLAIMABLE, Connection
from zenaton_runtime.store.postgres_writer import Writer
from zenaton_runtime.store.sqlite_rows import TASK_COLS

# The rows to claim are picked and locked once (MATERIALIZED), then updated; RETURNING has no
# order of its own: the claimed tasks are sorted as they were picked (run_at, then insertion).
_CLAIM = """WITH picked AS MATERIALIZED (
    SELECT ord FROM tasks WHERE {claimable} ORDER BY run_at, ord LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET status = 'running', attempts = attempts + 1 FROM picked WHERE tasks.ord = picked.ord
RETURNING {columns}, tasks.ord"""
_COLUMNS = ", ".join(f"tasks.{column.strip()}" for column in TASK_COLS.split(","))
CLAIM = _CLAIM.format(claimable=CLAIMABLE, columns=_COLUMNS)
CLAIM_OWNED = _CLAIM.format(claimable=OWNED_CLAIMABLE, columns=_COLUMNS)  # params: now, owner, limit


class Stepped(NamedTuple):
    """What a step's transaction returns: the tasks it claimed, the instances it finished, and
    whether it created any."""

    claimed: list[TaskRecord]
    finished: set[str]
    created: bool


class PostgresStepCommits:
    """``commit_step``, ``settle`` and ``changes``: a mixin of PostgresStore (it uses its
    connection, ``_write`` and ``_error``)."""

    _conn: Connection
    _me: str | None
    _news_counted: int  # the notifications received when changes() last saw them move
    _young_until: float  # when the newest instance this store heard of is old enough for a follower
    _held: dict[str, int]
    _other_writes: int
    _reconnects: int
    _notifications: Notifications
    _connection: Callable[[], Connection]
    _write: Callable[..., Any]
    _write_now: Callable[..., Any]
    _in_flight: PendingCommit | None
    _commit_thread: CommitThread | None
    _error: Callable[[psycopg.Error], Exception]
    now: Callable[[], float]
    _lost: Callable[..., bool]

    def commit_step(
        self, batch: Batch, now: float, limit: int, *, only_added: bool = False, background: bool = False
    ) -> PendingCommit:
        """The step and its claim in one transaction. ``only_added``: the caller knows no task was
        claimable before this batch; the tasks it adds are then claimed as they are written, with
        no claim query. ``background``: the whole transaction runs on a thread
        (``commit_thread.py``) and the handle lands it; meanwhile reads go through a second
        connection and see the store without this step, and any write waits for it to land."""
        me = self._me
        if not batch.ops:
            if limit <= 0:
                return PendingCommit.done([])
            return PendingCommit.done(self._write(lambda w: claim(w.c, now, limit, me), notify=False))

        def step(w: Writer) -> Stepped:
            w.run(batch)
            added = w.claim_added(limit) if only_added and limit > 0 else None
            then = []
            if me is not None and (batch.posts_to or w.created):
                then.append(notify_daemons(w.notify_owners - {me}))
            if limit > 0 and added is None:
                then.append(claim_query(now, limit, me))  # it sees the batch's own task writes
            rows = w.flush(then, commit=True)  # all of it in one round trip
            if added is None:
                added = claimed_tasks(rows) if limit > 0 else []
            return Stepped(added, set(w.finished), bool(w.created))

        if not background:
            return PendingCommit.done(self._stepped(self._write(step, notify=False, fenced=True)))
        self.settle()
        if self._commit_thread is None:
            self._commit_thread = CommitThread()
        pending = PendingCommit([], self._counted(), self.settle)
        self._in_flight = pending
        self._commit_thread.start(self._write_now, step, False, True, None)  # notify, fenced, landed
        return pending

    def _stepped(self, stepped: Stepped) -> list[TaskRecord]:
        """A step landed: what this store keeps of it; its claimed tasks."""
        if stepped.created:  # its own new instances: the first daemon takes them, or this one once they are old enough
            self._young_until = self.now() + FOLLOWER_DELAY
        for instance_id in stepped.finished:  # finished instances have no owner any more
            self._held.pop(instance_id, None)
        return stepped.claimed

    def settle(self) -> None:
        """Wait for the step in flight, if any; its PendingCommit learns how it ended."""
        pending = self._in_flight
        if pending is None:
            return
        stepped, error = self._commit_thread.wait()  # type: ignore[union-attr]
        self._in_flight = None  # only now: an interrupted wait leaves the step in flight
        if error is None:
            pending.claimed = self._stepped(stepped)
        else:
            pending.claimed, pending.error = [], error
        pending.landed = True

    def changes(self) -> object:
        """Notifications from other sessions (LISTEN from the first call on), this store's own
        writes other than steps and heartbeats, and its reconnections (which may have missed some).
        While a step is in flight, what they were when it started (its connection is busy)."""
        if self._in_flight is not None:
            return self._in_flight.changes
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
        counted = self._counted()
        if counted[0] != self._news_counted:  # news from others: instances created up to now, maybe
            self._news_counted = counted[0]
            self._young_until = self.now() + FOLLOWER_DELAY
        return counted

    def _counted(self) -> tuple[int, int, int, int]:
        """What ``changes()`` says, as it last read it (no query, never a reconnection)."""
        notes = self._notifications
        return (notes.received, self._other_writes, self._reconnects, notes.addressed)

    def wakeup_fd(self) -> int | None:
        """The connection's socket, LISTENing from now on: a notification from another session
        makes it readable, and ``changes()`` reads it off (``consume_input``), so it does not stay
        readable. None while the connection is lost: this never connects (the next step does,
        and its failure is the step's to handle); the daemon polls meanwhile. A new connection
        brings a new socket: the daemon asks each time."""
        self.settle()  # the step in flight uses the connection
        conn = self._conn
        if conn.closed or conn.broken:
            return None
        try:
            if not self._notifications.listening:
                self._notifications.listen(conn)
            return conn.pgconn.socket
        except psycopg.Error:
            return None


def claim(c: Connection, now: float, limit: int, owner: str | None = None) -> list[TaskRecord]:
    """Up to ``limit`` claimable tasks become running (attempts + 1), oldest run_at first; with an
    ``owner``, only tasks of the instances it owns."""
    return claimed_tasks(c.execute(*claim_query(now, limit, owner)).fetchall())


def claim_query(now: float, limit: int, owner: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """``claim``'s statement and parameters, to be sent with others."""
    return (CLAIM, (now, limit)) if owner is None else (CLAIM_OWNED, (now, owner, limit))


def claimed_tasks(rows: list[tuple[Any, ...]]) -> list[TaskRecord]:
    """The claim's rows as tasks, in claim order."""
    rows.sort(key=lambda r: (r[8], r[10]))
    running = TaskStatus.RUNNING
    return [TaskRecord(r[0], r[1], r[2], r[3], r[4], running, r[6], r[7], r[8], r[9]) for r in rows]

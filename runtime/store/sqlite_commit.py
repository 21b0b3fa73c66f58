"""Committing a step in SQLite (``SQLiteStepCommits.commit_step``, a mixin of SQLiteStore); its
COMMIT may run on a thread (``commit_thread.py``), so that the engine decides the next step meanwhile.

SQLite lets go of the GIL while it commits: the WAL write and its fsync, most of what a step
waits for under ``synchronous=FULL``, then overlap the engine's Python work. Only the COMMIT
runs on the thread: every write before it was made on the engine's thread, under the write
lock, in order, so commits land in the order they were written. While one is in flight the store
reads through a second connection, and every other write waits for it to land first.
A COMMIT that fails (an I/O error, a full disk: in WAL mode it takes no further lock) rolls the
step back; the engine keeps its results in memory and tries again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import TaskRecord, TaskStatus
from zenaton_runtime.store.commit_thread import CommitThread
from zenaton_runtime.store.ops import Batch
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.schema import CLAIMABLE
from zenaton_runtime.store.sqlite_rows import TASK_COLS
from zenaton_runtime.store.sqlite_wake import Waker
from zenaton_runtime.store.sqlite_writer import Writer


class SQLiteStepCommits:
    """``commit_step`` and what goes with it: a mixin of SQLiteStore (it uses its connections,
    its ``_read``, ``_write`` and ``_retry``)."""

    path: str
    now: Callable[[], float]
    committed_at: float
    _conn: sqlite3.Connection
    _reader: sqlite3.Connection | None
    _in_flight: PendingCommit | None
    _commit_thread: CommitThread | None
    _other_writes: int
    _waker: Waker

    _connect: Callable[[], sqlite3.Connection]
    _read: Callable[..., list[Any]]
    _write: Callable[..., Any]
    _retry: Callable[..., Any]

    def commit_step(
        self, batch: Batch, now: float, limit: int, *, only_added: bool = False, background: bool = False
    ) -> PendingCommit:
        """The step and its claim in one transaction. ``only_added``: the caller knows no task was
        claimable before this batch; the tasks it adds are then claimed as they are written.
        ``background``: the COMMIT runs on a thread (``sqlite_commit.py``) and the handle lands it;
        meanwhile reads go through a second connection and see the store without this step (or
        with all of it), and any write waits for the commit to land."""
        if not batch.ops and not background:
            if limit <= 0 or not self._read(f"SELECT 1 FROM tasks WHERE {CLAIMABLE} LIMIT 1", (now,)):
                return PendingCommit.done([])
            return PendingCommit.done(self._write(lambda w: _claim(w, now, limit), step=True))
        if not background:
            return PendingCommit.done(
                self._write(lambda w: _apply_and_claim(w, batch, now, limit, only_added), step=True)
            )
        self.settle()
        if self._commit_thread is None:
            self._reader = self._connect()
            self._commit_thread = CommitThread()

        def write() -> PendingCommit:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                writer = Writer(c, self.now)
                claimed = _apply_and_claim(writer, batch, now, limit, only_added)
                writer.flush()
                # our own commit leaves data_version alone: read now, it is what it will be after
                return PendingCommit(claimed, self._changes(), self.settle)
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        pending: PendingCommit = self._retry(write)
        self._in_flight = pending
        self._commit_thread.start(_commit, self._conn)
        return pending

    def settle(self) -> None:
        """Wait for the commit in flight, if any; its PendingCommit learns how it ended."""
        pending = self._in_flight
        if pending is None:
            return
        _, error = self._commit_thread.wait()  # type: ignore[union-attr]
        self._in_flight = None  # only now: an interrupted wait leaves the commit in flight
        if error is not None:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # a failed COMMIT may have rolled back already
            pending.claimed, pending.error = [], StoreError(f"store {self.path}: {error}")
        else:
            self.committed_at = time.time()
        pending.landed = True

    def changes(self) -> object:
        """Other connections' commits show in ``data_version``; this one's are counted.
        While a step commits, what they were when it was written (read again after it lands).
        The wake-up socket is read off first: what woke the daemon is seen by this look."""
        self._waker.drain()
        if self._in_flight is not None:
            return self._in_flight.changes
        return self._retry(self._changes)

    def _changes(self) -> object:
        return self._conn.execute("PRAGMA data_version").fetchone()[0], self._other_writes

    def wakeup_fd(self) -> int | None:
        """The socket other writers nudge after their commits (``sqlite_wake``), bound on the
        first call (only the daemon asks); None where it cannot be: the daemon then looks at
        ``data_version`` every IDLE_POLL (a cheap read of the file's header)."""
        return self._waker.listen()


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def _apply_and_claim(w: Writer, batch: Batch, now: float, limit: int, only_added: bool) -> list[TaskRecord]:
    w.run(batch)
    if limit <= 0:
        return []
    claimed = w.claim_added(limit) if only_added else None
    return _claim(w, now, limit) if claimed is None else claimed


def _claim(w: Writer, now: float, limit: int) -> list[TaskRecord]:
    w.flush()  # the batch's own task writes first
    rows = w.c.execute(
        f"SELECT {TASK_COLS}, ord FROM tasks WHERE {CLAIMABLE} ORDER BY run_at, ord LIMIT ?", (now, limit)
    ).fetchall()
    # by ord, the rowid: no look-up through the id index
    w.c.executemany(
        "UPDATE tasks SET status = 'running', attempts = attempts + 1 WHERE ord = ?", [(r[10],) for r in rows]
    )
    running = TaskStatus.RUNNING
    return [TaskRecord(r[0], r[1], r[2], r[3], r[4], running, r[6], r[7] + 1, r[8], r[9]) for r in rows]

"""A step's COMMIT on a thread of its own, so that the engine decides the next step meanwhile.

SQLite lets go of the GIL while it commits: the WAL write and its fsync, most of what a step
waits for under ``synchronous=FULL``, then overlap the engine's Python work. Only the COMMIT
runs on the thread: every write before it was made on the engine's thread, under the write
lock, in order, so commits land in the order they were written. While one is in flight the store
reads through a second connection, and every other write waits for it to land first.
A COMMIT that fails (an I/O error, a full disk: in WAL mode it takes no further lock) rolls the
step back; the engine keeps its results in memory and tries again.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable

from zenaton_runtime.models import TaskRecord


class PendingCommit:
    """A step written (and its tasks claimed) whose COMMIT is in flight.

    ``wait()`` returns the claimed tasks once the step is durable, or raises the StoreError
    that rolled all of it back. ``changes`` is the store's ``changes()`` when it was written.
    """

    __slots__ = ("_settle", "changes", "claimed", "error", "landed")

    def __init__(self, claimed: list[TaskRecord], changes: object, settle: Callable[[], None]) -> None:
        self.claimed = claimed
        self.changes = changes
        self.error: Exception | None = None
        self.landed = False
        self._settle = settle

    def wait(self) -> list[TaskRecord]:
        if not self.landed:
            self._settle()
        if self.error is not None:
            raise self.error
        return self.claimed


class CommitThread:
    """Runs COMMIT on connections whose transactions the caller wrote, one at a time."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[sqlite3.Connection | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[Exception | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="zenaton-commit", daemon=True)
        self._thread.start()

    def start(self, conn: sqlite3.Connection) -> None:
        self._requests.put(conn)

    def wait(self) -> Exception | None:
        """How the commit started last ended: None, or SQLite's error."""
        return self._results.get()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (conn := self._requests.get()) is not None:
            try:
                conn.execute("COMMIT")
            except Exception as error:  # never leave the waiting engine without an answer
                self._results.put(error)
            else:
                self._results.put(None)

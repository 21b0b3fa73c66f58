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

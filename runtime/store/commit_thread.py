"""The thread a step's commit runs on while the engine decides the next step.

A backend that commits in the background hands each step's write to ``CommitThread.start`` and
takes its ending from ``wait``: SQLite its COMMIT alone (``sqlite_commit.py``), PostgreSQL the
whole transaction (``postgres_commit.py``). One write at a time, in the order started: the store
waits for one to land before it starts the next, and before any other write of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class CommitThread:
    """Runs ``write(*args)`` calls one at a time on a thread of its own."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[Any, Exception | None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="zenaton-commit", daemon=True)
        self._thread.start()

    def start(self, write: Callable[..., Any], *args: Any) -> None:
        self._requests.put((write, args))

    def wait(self) -> tuple[Any, Exception | None]:
        """How the write started last ended: its result and None, or None and its error."""
        return self._results.get()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            write, args = request
            try:
                result = write(*args)
            except Exception as error:  # never leave the waiting engine without an answer
                self._results.put((None, error))
            else:
                self._results.put((result, None))

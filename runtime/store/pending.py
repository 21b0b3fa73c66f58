"""A committed step's handle: what ``Store.commit_step`` returns on every backend.

A backend that commits at once returns it landed; one that commits in the background
(SQLite, when asked) returns it in flight and lands it on ``wait()`` or its ``settle()``.
"""

from __future__ import annotations

from collections.abc import Callable

from zenaton_runtime.models import TaskRecord


class PendingCommit:
    """A step written (and its tasks claimed) whose COMMIT may still be in flight.

    ``wait()`` returns the claimed tasks once the step is durable, or raises the StoreError
    that rolled all of it back. ``changes`` is the store's ``changes()`` when it was written.
    """

    __slots__ = ("_settle", "changes", "claimed", "error", "landed")

    def __init__(self, claimed: list[TaskRecord], changes: object, settle: Callable[[], None] | None = None) -> None:
        self.claimed = claimed
        self.changes = changes
        self.error: Exception | None = None
        self.landed = settle is None
        self._settle = settle

    @classmethod
    def done(cls, claimed: list[TaskRecord]) -> PendingCommit:
        """A step already durable."""
        return cls(claimed, None)

    def wait(self) -> list[TaskRecord]:
        if not self.landed and self._settle is not None:
            self._settle()
        if self.error is not None:
            raise self.error
        return self.claimed

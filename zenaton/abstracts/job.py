"""The common base of tasks and workflows."""

from __future__ import annotations

from typing import Any


class Job:
    """Something the engine can execute or dispatch.

    As in the original SDK, the bases can be instantiated and a subclass without ``handle()``
    is no error: its ``handle()`` does nothing and returns None.
    """

    def handle(self) -> Any:
        """The job's work: override it."""
        return None

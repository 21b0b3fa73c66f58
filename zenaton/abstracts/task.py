"""Tasks: the units of real work, run by the task pool."""

from __future__ import annotations

from typing import Any

from ..contexts.task_context import TaskContext, current_task_context
from .job import Job


class Task(Job):
    """Subclass and implement ``handle()``; call ``execute()`` or ``dispatch()``."""

    def handle(self) -> Any:
        """Do the task's work and return its result: override it."""
        return None

    def on_error_retry_delay(self, error: BaseException) -> Any:
        """Seconds to wait before retrying after ``error``; a falsy value means no retry."""
        return None

    def max_processing_time(self) -> float | None:
        """Seconds an attempt may run before it is killed; None means no limit."""
        return None

    def get_context(self) -> TaskContext:
        """The running attempt's context (id, retry_index)."""
        context = getattr(self, "_context", None) or current_task_context.get()
        return context or TaskContext()

    def set_context(self, context: TaskContext) -> None:
        """Set the context once; the engine calls this before the attempt runs."""
        if getattr(self, "_context", None) is not None:
            raise Exception("Context is already set and cannot be mutated.")
        self._context = context

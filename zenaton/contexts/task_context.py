"""The context of a running task attempt."""

from __future__ import annotations

import contextvars


class TaskContext:
    """``id``: the task's id; ``retry_index``: 0 on the first attempt, n on the n-th retry."""

    def __init__(self, **kwargs: object) -> None:
        self.id = kwargs.get("id")
        self.retry_index = kwargs.get("retry_index")

    def __repr__(self) -> str:
        return f"TaskContext(id={self.id!r}, retry_index={self.retry_index!r})"


current_task_context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "zenaton_task_context", default=None
)

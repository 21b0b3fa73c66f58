"""The context of a running workflow instance."""

from __future__ import annotations

import contextvars


class WorkflowContext:
    """``id``: the instance's generated id."""

    def __init__(self, **kwargs: object) -> None:
        self.id = kwargs.get("id")

    def __repr__(self) -> str:
        return f"WorkflowContext(id={self.id!r})"


current_workflow_context: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "zenaton_workflow_context", default=None
)

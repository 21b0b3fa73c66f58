"""Workflows: durable orchestration written as ordinary Python."""

from __future__ import annotations

from typing import Any

from ..contexts.workflow_context import WorkflowContext, current_workflow_context
from .job import Job


class Workflow(Job):
    """Subclass and implement ``handle()``; tasks it executes become durable steps."""

    def handle(self) -> Any:
        """The workflow's logic, replayed, so it must be deterministic: override it."""
        return None

    def id(self) -> Any:
        """A custom id (str or int, at most 256 characters), or None."""
        return None

    def on_event(self, event: Any) -> None:
        """Called for every event the running instance receives."""

    def get_context(self) -> WorkflowContext:
        """The running instance's context (its id)."""
        return current_workflow_context.get() or WorkflowContext()

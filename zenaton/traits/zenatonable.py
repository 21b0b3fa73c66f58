"""Zenatonable: what makes a Task or Workflow dispatchable and executable."""

from __future__ import annotations

from typing import Any

from .._jobs import check_jobs
from .._runtime import get_runtime


class Zenatonable:
    """Mix into a Task or Workflow to give it execute, dispatch and where_id."""

    def dispatch(self) -> None:
        """Start this job without waiting for it."""
        get_runtime().dispatch(check_jobs([self]))

    def execute(self) -> Any:
        """Run this job and return its result (inside a workflow: a durable step)."""
        return get_runtime().execute(check_jobs([self]))[0]

    def schedule(self, cron: str) -> Any:
        """Dispatch this job at every fire time of ``cron`` (5 fields, or 6 with seconds first)."""
        return get_runtime().schedule(check_jobs([self])[0], cron)

    @classmethod
    def where_id(cls, workflow_id: Any) -> Any:
        """A query on the instance of this workflow with this custom id."""
        from ..query.builder import Builder

        return Builder(cls).where_id(workflow_id)

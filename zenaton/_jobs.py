"""Checks shared by everything that executes or dispatches jobs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .abstracts.task import Task
from .abstracts.workflow import Workflow
from .exceptions import InvalidArgumentError

MAX_ID_LENGTH = 256


def check_jobs(jobs: Iterable[Any]) -> list[Any]:
    """Return the jobs as a list, refusing anything that is not a Task or a Workflow."""
    jobs = list(jobs)
    for job in jobs:
        if not isinstance(job, (Task, Workflow)):
            raise InvalidArgumentError(
                f"You can only execute or dispatch Zenaton Task or Workflow, not {type(job).__name__}"
            )
    return jobs


def check_custom_id(custom_id: Any) -> str | None:
    """The custom id as a string, or None; refuses a wrong type or an id too long."""
    if custom_id is None:
        return None
    if isinstance(custom_id, bool) or not isinstance(custom_id, (str, int)):
        raise InvalidArgumentError(f"Provided ID must be a string or an integer, not {type(custom_id).__name__}")
    text = str(custom_id)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidArgumentError(f"Provided ID must not exceed {MAX_ID_LENGTH} characters")
    return text

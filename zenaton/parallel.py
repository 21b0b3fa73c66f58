"""Parallel: run several jobs at once."""

from __future__ import annotations

from typing import Any

from ._jobs import check_jobs
from ._runtime import get_runtime


class Parallel:
    """``Parallel(*jobs).execute()`` returns the list of their results, in order."""

    def __init__(self, *jobs: Any) -> None:
        self.items = check_jobs(jobs)

    def execute(self) -> list[Any]:
        return get_runtime().execute(self.items)

    def dispatch(self) -> None:
        get_runtime().dispatch(self.items)

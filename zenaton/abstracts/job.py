"""The common base of tasks and workflows."""

from __future__ import annotations

import abc
from typing import Any


class Job(abc.ABC):
    """Something the engine can execute or dispatch."""

    @abc.abstractmethod
    def handle(self) -> Any:
        """The job's work."""

"""Wait: pause a workflow for a duration, until a date, or until an event."""

from __future__ import annotations

import inspect
from typing import Any

from .._runtime import get_runtime
from ..abstracts.event import Event
from ..abstracts.task import Task
from ..exceptions import InvalidArgumentError
from ..traits.with_timestamp import WithTimestamp
from ..traits.zenatonable import Zenatonable


class Wait(Task, Zenatonable, WithTimestamp):
    """``Wait(EventClass=None)``; chain a duration or a date to set a timeout.

    Inside a workflow, ``execute()`` returns the event received, or None when the
    time runs out. Without an event class it simply waits for the time given.
    """

    def __init__(self, event: Any = None) -> None:
        is_event_class = inspect.isclass(event) and issubclass(event, Event)
        if event is not None and not is_event_class and not isinstance(event, str):
            raise InvalidArgumentError(f"Wait: invalid parameter - argument must be an Event subclass, not {event!r}")
        self.event = event if isinstance(event, str) or event is None else event.__name__
        self.buffer: list[list[Any]] = []

    def handle(self) -> None:
        """Waiting is done by the engine; there is nothing to run."""

    def execute(self) -> Any:
        return get_runtime().wait(self)

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
        if event is not None and not self.valid_param(event):
            raise InvalidArgumentError(f"Wait: invalid parameter - argument must be an Event subclass, not {event!r}")
        self.event = event if isinstance(event, str) or event is None else event.__name__
        self.buffer: list[list[Any]] = []

    @property
    def error(self) -> str:
        """The message of a Wait given something that is not an Event class (as the original)."""
        return f"{type(self).__name__}: Invalid parameter - argument must be a zenaton.abstracts.event.Event subclass"

    def valid_param(self, event: Any) -> bool:
        """Whether ``Wait(event)`` accepts it: nothing, an event class or its name."""
        return not event or isinstance(event, str) or self.event_class(event)

    def event_class(self, event: Any) -> bool:
        """Whether ``event`` is an Event subclass."""
        return inspect.isclass(event) and issubclass(event, Event)

    def handle(self) -> None:
        """Waiting is done by the engine; there is nothing to run."""

    def execute(self) -> Any:
        return get_runtime().wait(self)

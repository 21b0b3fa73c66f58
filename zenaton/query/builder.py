"""where_id(...): find and control a workflow instance by its custom id."""

from __future__ import annotations

from typing import Any

from .._runtime import get_runtime
from ..abstracts.event import Event
from ..abstracts.workflow import Workflow
from ..exceptions import ExternalError, InvalidArgumentError


class Builder:
    """A query on the instances of one workflow class."""

    def __init__(self, class_: type) -> None:
        if not (isinstance(class_, type) and issubclass(class_, Workflow)):
            raise ExternalError(f"{class_!r} should be a subclass of Workflow")
        self.class_ = class_
        self.id: Any = None

    def where_id(self, id: Any) -> Builder:
        self.id = id
        return self

    def find(self) -> Workflow | None:
        """The instance's workflow object with its current properties, or None."""
        return get_runtime().find(self.class_, self.id)

    def send_event(self, event: Event) -> Builder:
        if not isinstance(event, Event):
            raise InvalidArgumentError(f"send_event() takes an Event, not {type(event).__name__}")
        get_runtime().send_event(self.class_, self.id, event)
        return self

    def kill(self) -> Builder:
        get_runtime().control(self.class_, self.id, "kill")
        return self

    def pause(self) -> Builder:
        get_runtime().control(self.class_, self.id, "pause")
        return self

    def resume(self) -> Builder:
        get_runtime().control(self.class_, self.id, "resume")
        return self

"""Classes with an importable module path, used by tests/test_serializer.py."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections import OrderedDict  # noqa: F401  re-exported: decode must refuse it by this name
from typing import Any

from zenaton.abstracts.event import Event
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow


class Point:
    def __init__(self, x: Any, y: Any) -> None:
        self.x = x
        self.y = y


class Holder:
    """An object whose attributes are whatever it is given."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


class NeedsArgs:
    init_calls = 0

    def __init__(self, a: Any) -> None:
        NeedsArgs.init_calls += 1
        self.a = a


class Outer:
    class Inner:
        def __init__(self, v: Any) -> None:
            self.v = v


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple[Any, ...]


class Slotted:
    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = 1


class StrSub(str):
    pass


class AppError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, code)
        self.code = code


class Bag(dict):  # type: ignore[type-arg]
    """A dict subclass that also has attributes."""


class OddZone(dt.tzinfo):
    def utcoffset(self, when: Any) -> dt.timedelta:
        return dt.timedelta(hours=1)


class UserSignedUp(Event):
    def __init__(self, email: str) -> None:
        self.email = email


class SendWelcome(Task):
    def __init__(self, to: str) -> None:
        self.to = to

    def handle(self) -> str:
        return self.to


class WelcomeFlow(Workflow):
    def __init__(self, user: Any) -> None:
        self.user = user
        self.sent: list[Any] = []

    def handle(self) -> None:
        self.sent.append(SendWelcome(self.user.email).execute())

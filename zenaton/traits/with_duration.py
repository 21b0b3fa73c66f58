"""Duration builders for Wait: seconds, minutes, hours, days, weeks, months, years."""

from __future__ import annotations

import time
from typing import Any

from .._wait_times import fire_at
from ..exceptions import InvalidArgumentError

DURATION_UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")


class WithDuration:
    """Accumulates duration parts; the engine turns them into a fire time."""

    def get_duration(self) -> float:
        """Seconds from now until the wait ends, as the engine would schedule it if it started
        now (calendar days and months in the wait's timezone); 0 for a wait without limit."""
        buffer = self.__dict__.get("buffer") or []
        if not buffer:
            return 0
        now = time.time()
        fire = fire_at(buffer, getattr(self, "timezone", "UTC"), now)
        return 0 if fire is None else max(0.0, round(fire - now, 3))

    def _push(self, unit: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidArgumentError(f"{unit}() takes a non-negative number, not {value!r}")
        buffer = self.__dict__.setdefault("buffer", [])
        buffer.append([unit, value])
        return self

    def seconds(self, value: float = 1) -> Any:
        return self._push("seconds", value)

    def minutes(self, value: float = 1) -> Any:
        return self._push("minutes", value)

    def hours(self, value: float = 1) -> Any:
        return self._push("hours", value)

    def days(self, value: float = 1) -> Any:
        return self._push("days", value)

    def weeks(self, value: float = 1) -> Any:
        return self._push("weeks", value)

    def months(self, value: int = 1) -> Any:
        return self._push("months", self._whole("months", value))

    def years(self, value: int = 1) -> Any:
        return self._push("years", self._whole("years", value))

    @staticmethod
    def _whole(unit: str, value: Any) -> Any:
        # Calendar months and years cannot be split; a fraction has no clear meaning.
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{unit}() takes a whole number, not {value!r}")
        return value

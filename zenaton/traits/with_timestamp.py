"""Date builders for Wait: timestamp, at, day_of_month, weekdays, set_timezone."""

from __future__ import annotations

import datetime as _dt
import re
import time
import zoneinfo
from typing import Any

from .._wait_times import fire_at
from ..exceptions import InvalidArgumentError, OutOfRangeError
from .with_duration import DURATION_UNITS, WithDuration

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


class WithTimestamp(WithDuration):
    """Accumulates date parts; the engine computes the next such moment."""

    timezone = "UTC"

    def timestamp(self, value: Any) -> Any:
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                raise InvalidArgumentError("timestamp() needs an aware datetime or a unix timestamp")
            value = value.timestamp()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgumentError(f"timestamp() takes a unix timestamp, not {value!r}")
        self.__dict__.setdefault("buffer", []).append(["timestamp", value])
        return self

    def at(self, value: str) -> Any:
        match = _TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
        if not match:
            raise InvalidArgumentError(f'at() takes a time of day like "15:10:23", not {value!r}')
        if int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
            raise OutOfRangeError(f"at() takes a time of day from 0:00:00 to 23:59:59, not {value!r}")
        self.__dict__.setdefault("buffer", []).append(["at", value])
        return self

    def day_of_month(self, value: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"day_of_month() takes a day from 1 to 31, not {value!r}")
        if not 1 <= value <= 31:
            raise OutOfRangeError(f"day_of_month() takes a day from 1 to 31, not {value!r}")
        self.__dict__.setdefault("buffer", []).append(["day_of_month", value])
        return self

    def _weekday(self, day: str, value: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{day}() takes a positive count, not {value!r}")
        self.__dict__.setdefault("buffer", []).append([day, value])
        return self

    def monday(self, value: int = 1) -> Any:
        return self._weekday("monday", value)

    def tuesday(self, value: int = 1) -> Any:
        return self._weekday("tuesday", value)

    def wednesday(self, value: int = 1) -> Any:
        return self._weekday("wednesday", value)

    def thursday(self, value: int = 1) -> Any:
        return self._weekday("thursday", value)

    def friday(self, value: int = 1) -> Any:
        return self._weekday("friday", value)

    def saturday(self, value: int = 1) -> Any:
        return self._weekday("saturday", value)

    def sunday(self, value: int = 1) -> Any:
        return self._weekday("sunday", value)

    def get_timetamp_or_duration(self) -> list[Any]:
        """``[timestamp, None]`` when the wait ends at a date (a unix time, as an int), ``[None,
        seconds]`` when it lasts a duration, ``[None, None]`` without either: what the engine
        would schedule if the wait started now (the original SDK's name, typo included)."""
        buffer = self.__dict__.get("buffer") or []
        if not buffer:
            return [None, None]
        now = time.time()
        fire = fire_at(buffer, self.timezone, now)
        assert fire is not None
        if any(unit in DURATION_UNITS for unit, _ in buffer):
            return [None, round(fire - now, 3)]
        return [int(fire), None]

    get_timestamp_or_duration = get_timetamp_or_duration

    def set_timezone(self, timezone: str) -> Any:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidArgumentError(f"Unknown timezone {timezone!r}") from None
        self.timezone = timezone
        return self

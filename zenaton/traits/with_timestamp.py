"""Date builders for Wait: timestamp, at, day_of_month, weekdays, set_timezone."""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from typing import Any

from ..exceptions import InvalidArgumentError
from .with_duration import WithDuration

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
        if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
            raise InvalidArgumentError(f'at() takes a time of day like "15:10:23", not {value!r}')
        self.__dict__.setdefault("buffer", []).append(["at", value])
        return self

    def day_of_month(self, value: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
            raise InvalidArgumentError(f"day_of_month() takes a day from 1 to 31, not {value!r}")
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

    def set_timezone(self, timezone: str) -> Any:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidArgumentError(f"Unknown timezone {timezone!r}") from None
        self.timezone = timezone
        return self

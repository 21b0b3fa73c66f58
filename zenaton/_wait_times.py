"""When a Wait ends: turn a Wait's buffer and timezone into a unix fire time.

Pure: the caller passes ``now``; nothing here reads the clock. The one computation of a wait's
end: the engine schedules with it (``zenaton_runtime.timing.waits``) and ``Wait.get_duration()``
tells with it, so the two always agree.

Local wall times are resolved with zoneinfo and ``fold=0``: a time inside a
spring-forward gap moves forward by the gap (02:30 -> 03:30 in Europe/Paris), and
an ambiguous time during a fall-back takes its first occurrence.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import InvalidArgumentError

__all__ = ["fire_at"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EXACT_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}
CALENDAR_DAY_UNITS = {"days": 1, "weeks": 7}
MONTH_UNITS = {"months": 1, "years": 12}
DURATION_UNITS = frozenset(EXACT_UNITS) | frozenset(CALENDAR_DAY_UNITS) | frozenset(MONTH_UNITS)
DATE_UNITS = frozenset(("at", "day_of_month", *WEEKDAYS))

_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
# Every day of month 1..31 recurs within a year; the bound only guards the loop.
_MAX_MONTHS = 24


@dataclass
class _Parts:
    """The buffer, validated and grouped."""

    exact_seconds: float = 0.0
    calendar_days: int = 0
    months: int = 0
    has_duration: bool = False
    timestamp: float | None = None
    at: dt.time | None = None
    day_of_month: int | None = None
    weekday: tuple[int, int] | None = None  # (0=monday..6, n-th occurrence)
    date_units: list[str] = field(default_factory=list)


def fire_at(buffer: list[list[Any]], timezone: str, now: float) -> float | None:
    """The unix time at which a wait with this ``buffer`` ends, seen from ``now``.

    Returns None for an empty buffer (a wait without limit). Raises
    InvalidArgumentError for a malformed buffer, an unknown timezone or a refused
    combination of methods.
    """
    if not buffer:
        return None
    tz = _zone(timezone)
    parts = _parse(buffer)
    if parts.timestamp is not None:
        return parts.timestamp
    if parts.has_duration:
        return _after_duration(parts, tz, now)
    return _next_date(parts, tz, now)


# ---------------------------------------------------------------- parsing


def _zone(timezone: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidArgumentError(f"Wait: unknown timezone {timezone!r}") from None


def _parse(buffer: list[list[Any]]) -> _Parts:
    parts = _Parts()
    for entry in buffer:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise InvalidArgumentError(f"Wait: malformed buffer entry {entry!r}")
        unit, value = entry
        if unit == "timestamp":
            if len(buffer) > 1:
                raise InvalidArgumentError("Wait: timestamp() cannot be combined with any other method")
            parts.timestamp = _number(unit, value)
        elif unit in DURATION_UNITS:
            _add_duration(parts, unit, value)
        elif unit in DATE_UNITS:
            _add_date(parts, unit, value)
        else:
            raise InvalidArgumentError(f"Wait: unknown method {unit!r}")
    if parts.has_duration and parts.date_units:
        raise InvalidArgumentError(f"Wait: a duration cannot be combined with {', '.join(parts.date_units)}()")
    return parts


def _number(unit: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"Wait: {unit}() takes a number, not {value!r}")
    return value


def _add_duration(parts: _Parts, unit: str, value: Any) -> None:
    value = _number(unit, value)
    if value < 0:
        raise InvalidArgumentError(f"Wait: {unit}() takes a non-negative number, not {value!r}")
    parts.has_duration = True
    if unit in EXACT_UNITS:
        parts.exact_seconds += value * EXACT_UNITS[unit]
    elif unit in CALENDAR_DAY_UNITS:
        days = value * CALENDAR_DAY_UNITS[unit]
        whole = int(days)
        # Whole days are calendar days; a fraction of a day is exact elapsed time.
        parts.calendar_days += whole
        parts.exact_seconds += (days - whole) * 86400
    else:
        if value != int(value):
            raise InvalidArgumentError(f"Wait: {unit}() takes a whole number, not {value!r}")
        parts.months += int(value) * MONTH_UNITS[unit]


def _add_date(parts: _Parts, unit: str, value: Any) -> None:
    if unit == "at":
        if parts.at is not None:
            raise InvalidArgumentError("Wait: at() can only be called once")
        parts.at = _time_of_day(value)
    elif unit == "day_of_month":
        if parts.day_of_month is not None:
            raise InvalidArgumentError("Wait: day_of_month() can only be called once")
        if parts.weekday is not None:
            raise InvalidArgumentError("Wait: day_of_month() cannot be combined with a weekday")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
            raise InvalidArgumentError(f"Wait: day_of_month() takes a day from 1 to 31, not {value!r}")
        parts.day_of_month = value
    else:
        if parts.weekday is not None:
            raise InvalidArgumentError("Wait: only one weekday method can be called")
        if parts.day_of_month is not None:
            raise InvalidArgumentError("Wait: a weekday cannot be combined with day_of_month()")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"Wait: {unit}() takes a positive count, not {value!r}")
        parts.weekday = (WEEKDAYS.index(unit), value)
    parts.date_units.append(unit)


def _time_of_day(value: Any) -> dt.time:
    match = _TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour <= 23 and minute <= 59 and second <= 59:
            return dt.time(hour, minute, second)
    raise InvalidArgumentError(f'Wait: at() takes a time of day like "15:10:23", not {value!r}')


# ---------------------------------------------------------------- computing


def _resolve(day: dt.date, time: dt.time, tz: zoneinfo.ZoneInfo) -> float:
    """Unix time of a local wall time; fold=0 gives both DST rules of the module doc."""
    return dt.datetime.combine(day, time, tzinfo=tz).replace(fold=0).timestamp()


def _local(now: float, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, tz)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def _after_duration(parts: _Parts, tz: zoneinfo.ZoneInfo, now: float) -> float:
    if not parts.months and not parts.calendar_days:
        return now + parts.exact_seconds
    local = _local(now, tz)
    day = _add_months(local.date(), parts.months) + dt.timedelta(days=parts.calendar_days)
    return _resolve(day, local.time(), tz) + parts.exact_seconds


def _next_date(parts: _Parts, tz: zoneinfo.ZoneInfo, now: float) -> float:
    local = _local(now, tz)
    time = parts.at if parts.at is not None else local.time()
    if parts.day_of_month is not None:
        return _next_day_of_month(parts.day_of_month, time, local.date(), tz, now)
    if parts.weekday is not None:
        weekday, count = parts.weekday
        on_weekday = lambda day: day.weekday() == weekday  # noqa: E731
        return _next_matching(on_weekday, count, time, local.date(), tz, now)
    return _next_matching(lambda day: True, 1, time, local.date(), tz, now)


def _next_matching(
    accept: Callable[[dt.date], bool],
    count: int,
    time: dt.time,
    today: dt.date,
    tz: zoneinfo.ZoneInfo,
    now: float,
) -> float:
    """The ``count``-th day from today that ``accept``s, at ``time``, strictly after now."""
    for offset in range(7 * count + 8):
        day = today + dt.timedelta(days=offset)
        if accept(day):
            moment = _resolve(day, time, tz)
            if moment > now:
                count -= 1
                if count == 0:
                    return moment
    raise AssertionError("unreachable: a weekday recurs every 7 days")


def _next_day_of_month(day_of_month: int, time: dt.time, today: dt.date, tz: zoneinfo.ZoneInfo, now: float) -> float:
    year, month = today.year, today.month
    for _ in range(_MAX_MONTHS):
        if day_of_month <= calendar.monthrange(year, month)[1]:
            moment = _resolve(dt.date(year, month, day_of_month), time, tz)
            if moment > now:
                return moment
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable: every day of month recurs within a year")

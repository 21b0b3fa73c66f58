"""zenaton_runtime.timing.waits.fire_at: when a Wait ends, with pinned ``now`` values.

Expected values are written as UTC wall times, with the local time in a comment,
so they do not depend on the code under test resolving time zones.
Reference dates: 2024-04-15 is a Monday; Europe/Paris springs forward on
2024-03-31 (02:00 CET -> 03:00 CEST) and falls back on 2024-10-27 (03:00 CEST ->
02:00 CET); America/New_York springs forward on 2024-03-10 (02:00 EST -> 03:00 EDT)
and falls back on 2024-11-03 (02:00 EDT -> 01:00 EST).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from zenaton_runtime.timing.waits import fire_at
from zenaton.exceptions import InvalidArgumentError
from zenaton.tasks.wait import Wait

HOUR = 3600
DAY = 86400


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc).timestamp()


MONDAY_0700 = utc(2024, 4, 15, 7)
MONDAY_0900 = utc(2024, 4, 15, 9)


def test_reference_dates() -> None:
    assert dt.date(2024, 4, 15).weekday() == 0


def test_empty_buffer_waits_without_limit() -> None:
    assert fire_at([], "UTC", MONDAY_0700) is None


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("buffer", "seconds"),
    [
        ([["seconds", 30]], 30),
        ([["minutes", 2]], 120),
        ([["hours", 3]], 3 * HOUR),
        ([["days", 2]], 2 * DAY),
        ([["weeks", 1]], 7 * DAY),
        ([["seconds", 10], ["seconds", 5], ["minutes", 1]], 75),
        ([["hours", 1], ["minutes", 30], ["seconds", 15], ["hours", 1]], 2 * HOUR + 1815),
        ([["weeks", 1], ["days", 1], ["hours", 1]], 8 * DAY + HOUR),
        ([["days", 1.5]], DAY + 12 * HOUR),
        ([["seconds", 0.25]], 0.25),
        ([["seconds", 0]], 0),
    ],
)
def test_durations_add_up(buffer: list[list[Any]], seconds: float) -> None:
    assert fire_at(buffer, "UTC", MONDAY_0700) == MONDAY_0700 + seconds


def test_months_clamp_to_month_end() -> None:
    assert fire_at([["months", 1]], "UTC", utc(2024, 1, 31, 10)) == utc(2024, 2, 29, 10)
    assert fire_at([["months", 1]], "UTC", utc(2023, 1, 31, 10)) == utc(2023, 2, 28, 10)
    assert fire_at([["months", 3]], "UTC", utc(2024, 1, 31, 10)) == utc(2024, 4, 30, 10)
    assert fire_at([["months", 1]], "UTC", utc(2024, 3, 31, 10)) == utc(2024, 4, 30, 10)


def test_months_and_years_calendar_arithmetic() -> None:
    assert fire_at([["months", 1]], "UTC", utc(2024, 4, 15, 7)) == utc(2024, 5, 15, 7)
    assert fire_at([["months", 13]], "UTC", utc(2024, 12, 15, 7)) == utc(2026, 1, 15, 7)
    assert fire_at([["years", 1]], "UTC", utc(2024, 2, 29, 7)) == utc(2025, 2, 28, 7)
    assert fire_at([["years", 1], ["months", 2]], "UTC", utc(2024, 4, 15)) == utc(2025, 6, 15)
    assert fire_at([["months", 1], ["months", 1]], "UTC", utc(2024, 1, 31)) == utc(2024, 3, 31)
    assert fire_at([["months", 2.0]], "UTC", utc(2024, 1, 15)) == utc(2024, 3, 15)


def test_months_then_days_then_exact_time() -> None:
    buffer = [["hours", 2], ["days", 1], ["months", 1]]
    # Jan 31 -> Feb 29 (clamped) -> Mar 1, then two hours.
    assert fire_at(buffer, "UTC", utc(2024, 1, 31, 10)) == utc(2024, 3, 1, 12)


def test_months_keep_local_time_across_dst() -> None:
    # 2024-03-15 10:00 CET -> 2024-04-15 10:00 CEST
    assert fire_at([["months", 1]], "Europe/Paris", utc(2024, 3, 15, 9)) == utc(2024, 4, 15, 8)


def test_days_keep_wall_time_across_dst() -> None:
    # Paris, spring: 2024-03-30 12:00 CET -> 2024-03-31 12:00 CEST, 23 hours later.
    now = utc(2024, 3, 30, 11)
    assert fire_at([["days", 1]], "Europe/Paris", now) == utc(2024, 3, 31, 10)
    # Paris, autumn: 2024-10-26 12:00 CEST -> 2024-10-27 12:00 CET, 25 hours later.
    assert fire_at([["days", 1]], "Europe/Paris", utc(2024, 10, 26, 10)) == utc(2024, 10, 27, 11)
    # New York, autumn: 2024-11-02 12:00 EDT -> 2024-11-03 12:00 EST.
    assert fire_at([["days", 1]], "America/New_York", utc(2024, 11, 2, 16)) == utc(2024, 11, 3, 17)
    # One week over the New York spring change: 2024-03-07 09:00 EST -> 2024-03-14 09:00 EDT.
    assert fire_at([["weeks", 1]], "America/New_York", utc(2024, 3, 7, 14)) == utc(2024, 3, 14, 13)


def test_days_landing_in_the_spring_gap_move_forward() -> None:
    # 2024-03-30 02:30 CET + 1 day -> 02:30 does not exist -> 03:30 CEST.
    assert fire_at([["days", 1]], "Europe/Paris", utc(2024, 3, 30, 1, 30)) == utc(2024, 3, 31, 1, 30)


def test_hours_are_exact_elapsed_time_across_dst() -> None:
    now = utc(2024, 3, 30, 11)  # 12:00 CET
    assert fire_at([["hours", 24]], "Europe/Paris", now) == now + DAY  # 13:00 CEST
    now = utc(2024, 11, 2, 16)  # 12:00 EDT
    assert fire_at([["hours", 24]], "America/New_York", now) == now + DAY  # 11:00 EST


def test_timezone_changes_a_calendar_duration() -> None:
    now = utc(2024, 3, 30, 11)
    assert fire_at([["days", 1]], "UTC", now) == now + DAY
    assert fire_at([["days", 1]], "Europe/Paris", now) == now + DAY - HOUR


# ---------------------------------------------------------------- timestamp


def test_timestamp_ends_exactly_then() -> None:
    assert fire_at([["timestamp", 1_800_000_000]], "UTC", MONDAY_0700) == 1_800_000_000
    assert fire_at([["timestamp", 1_800_000_000.5]], "Asia/Tokyo", MONDAY_0700) == 1_800_000_000.5


# ---------------------------------------------------------------- at


def test_at_today_if_still_ahead() -> None:
    assert fire_at([["at", "08:00"]], "UTC", MONDAY_0700) == utc(2024, 4, 15, 8)
    assert fire_at([["at", "07:00:01"]], "UTC", MONDAY_0700) == utc(2024, 4, 15, 7, 0, 1)
    assert fire_at([["at", "8:05:30"]], "UTC", MONDAY_0700) == utc(2024, 4, 15, 8, 5, 30)


def test_at_tomorrow_if_passed_or_now() -> None:
    assert fire_at([["at", "08:00"]], "UTC", MONDAY_0900) == utc(2024, 4, 16, 8)
    assert fire_at([["at", "07:00"]], "UTC", MONDAY_0700) == utc(2024, 4, 16, 7)
    assert fire_at([["at", "23:59:59"]], "UTC", utc(2024, 12, 31, 23, 59, 59)) == utc(2025, 1, 1, 23, 59, 59)


def test_timezone_changes_at() -> None:
    # 07:00 UTC is 09:00 CEST in Paris and 16:00 JST in Tokyo.
    assert fire_at([["at", "08:00"]], "UTC", MONDAY_0700) == utc(2024, 4, 15, 8)
    assert fire_at([["at", "08:00"]], "Europe/Paris", MONDAY_0700) == utc(2024, 4, 16, 6)
    assert fire_at([["at", "08:00"]], "Asia/Tokyo", MONDAY_0700) == utc(2024, 4, 15, 23)


def test_at_keeps_wall_time_across_dst() -> None:
    # 2024-03-30 10:00 CET -> 2024-03-31 08:00 CEST.
    assert fire_at([["at", "08:00"]], "Europe/Paris", utc(2024, 3, 30, 9)) == utc(2024, 3, 31, 6)
    # 2024-11-02 10:00 EDT -> 2024-11-03 08:00 EST.
    assert fire_at([["at", "08:00"]], "America/New_York", utc(2024, 11, 2, 14)) == utc(2024, 11, 3, 13)


def test_at_in_the_spring_gap_moves_forward() -> None:
    # Paris: 02:30 on 2024-03-31 does not exist -> 03:30 CEST.
    assert fire_at([["at", "02:30"]], "Europe/Paris", utc(2024, 3, 30, 12)) == utc(2024, 3, 31, 1, 30)
    # New York: 02:30 on 2024-03-10 does not exist -> 03:30 EDT.
    assert fire_at([["at", "02:30"]], "America/New_York", utc(2024, 3, 9, 12)) == utc(2024, 3, 10, 7, 30)


def test_at_after_the_shifted_gap_time_goes_to_tomorrow() -> None:
    # 2024-03-31 03:45 CEST: today's 02:30 (-> 03:30) has passed; tomorrow 02:30 CEST.
    assert fire_at([["at", "02:30"]], "Europe/Paris", utc(2024, 3, 31, 1, 45)) == utc(2024, 4, 1, 0, 30)


def test_at_in_the_autumn_overlap_takes_first_occurrence() -> None:
    # Paris: 02:30 happens twice on 2024-10-27; the first is 02:30 CEST.
    assert fire_at([["at", "02:30"]], "Europe/Paris", utc(2024, 10, 26, 12)) == utc(2024, 10, 27, 0, 30)
    # New York: 01:30 happens twice on 2024-11-03; the first is 01:30 EDT.
    assert fire_at([["at", "01:30"]], "America/New_York", utc(2024, 11, 2, 12)) == utc(2024, 11, 3, 5, 30)


# ---------------------------------------------------------------- day_of_month


def test_day_of_month_keeps_time_of_now() -> None:
    now = utc(2024, 4, 15, 10)
    assert fire_at([["day_of_month", 20]], "UTC", now) == utc(2024, 4, 20, 10)
    assert fire_at([["day_of_month", 10]], "UTC", now) == utc(2024, 5, 10, 10)
    # The same day and time is not strictly in the future.
    assert fire_at([["day_of_month", 15]], "UTC", now) == utc(2024, 5, 15, 10)


def test_day_of_month_skips_months_without_that_day() -> None:
    assert fire_at([["day_of_month", 31]], "UTC", utc(2024, 4, 15, 10)) == utc(2024, 5, 31, 10)
    assert fire_at([["day_of_month", 30]], "UTC", utc(2024, 1, 31, 10)) == utc(2024, 3, 30, 10)
    assert fire_at([["day_of_month", 29]], "UTC", utc(2023, 2, 1)) == utc(2023, 3, 29)
    assert fire_at([["day_of_month", 29]], "UTC", utc(2024, 2, 1)) == utc(2024, 2, 29)
    assert fire_at([["day_of_month", 31]], "UTC", utc(2024, 12, 31, 10)) == utc(2025, 1, 31, 10)


def test_day_of_month_with_at() -> None:
    now = utc(2024, 4, 15, 10)
    assert fire_at([["day_of_month", 15], ["at", "11:00"]], "UTC", now) == utc(2024, 4, 15, 11)
    assert fire_at([["at", "09:00"], ["day_of_month", 15]], "UTC", now) == utc(2024, 5, 15, 9)
    assert fire_at([["day_of_month", 31], ["at", "08:00"]], "UTC", now) == utc(2024, 5, 31, 8)


def test_day_of_month_in_a_timezone() -> None:
    # 2024-04-15 23:30 UTC is already 2024-04-16 01:30 CEST in Paris.
    now = utc(2024, 4, 15, 23, 30)
    buffer = [["day_of_month", 16], ["at", "00:30"]]
    assert fire_at(buffer, "UTC", now) == utc(2024, 4, 16, 0, 30)
    # In Paris, 00:30 on the 16th has passed: 2024-05-16 00:30 CEST.
    assert fire_at(buffer, "Europe/Paris", now) == utc(2024, 5, 15, 22, 30)


# ---------------------------------------------------------------- weekdays


def test_weekday_on_the_same_day_before_and_after_the_time() -> None:
    buffer = [["monday", 1], ["at", "08:00"]]
    assert fire_at(buffer, "UTC", MONDAY_0700) == utc(2024, 4, 15, 8)
    assert fire_at(buffer, "UTC", MONDAY_0900) == utc(2024, 4, 22, 8)
    # Without at(), the same time today is not strictly in the future.
    assert fire_at([["monday", 1]], "UTC", MONDAY_0700) == utc(2024, 4, 22, 7)


def test_weekday_count_takes_a_later_occurrence() -> None:
    assert fire_at([["monday", 2], ["at", "08:00"]], "UTC", MONDAY_0700) == utc(2024, 4, 22, 8)
    assert fire_at([["monday", 2], ["at", "08:00"]], "UTC", MONDAY_0900) == utc(2024, 4, 29, 8)
    assert fire_at([["friday", 3]], "UTC", MONDAY_0700) == utc(2024, 5, 3, 7)


@pytest.mark.parametrize(
    ("unit", "day"),
    [
        ("monday", 22),
        ("tuesday", 16),
        ("wednesday", 17),
        ("thursday", 18),
        ("friday", 19),
        ("saturday", 20),
        ("sunday", 21),
    ],
)
def test_each_weekday_keeps_time_of_now(unit: str, day: int) -> None:
    assert fire_at([[unit, 1]], "UTC", MONDAY_0900) == utc(2024, 4, day, 9)


def test_weekday_with_at_and_timezone() -> None:
    # Monday 07:00 UTC is Monday 09:00 CEST: Paris Monday 08:00 has passed.
    buffer = [["at", "08:00"], ["monday", 1]]
    assert fire_at(buffer, "UTC", MONDAY_0700) == utc(2024, 4, 15, 8)
    assert fire_at(buffer, "Europe/Paris", MONDAY_0700) == utc(2024, 4, 22, 6)


def test_weekday_across_dst() -> None:
    # Sunday 2024-03-31 in Paris at 02:30 falls in the gap -> 03:30 CEST.
    buffer = [["sunday", 1], ["at", "02:30"]]
    assert fire_at(buffer, "Europe/Paris", utc(2024, 3, 28, 12)) == utc(2024, 3, 31, 1, 30)
    # Sunday 2024-11-03 in New York at 01:30 is ambiguous -> 01:30 EDT.
    buffer = [["sunday", 1], ["at", "01:30"]]
    assert fire_at(buffer, "America/New_York", utc(2024, 10, 31, 12)) == utc(2024, 11, 3, 5, 30)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "buffer",
    [
        pytest.param([["at", "08:00"], ["at", "09:00"]], id="at twice"),
        pytest.param([["monday", 1], ["tuesday", 1]], id="two weekdays"),
        pytest.param([["monday", 1], ["monday", 2]], id="same weekday twice"),
        pytest.param([["day_of_month", 1], ["day_of_month", 2]], id="day_of_month twice"),
        pytest.param([["day_of_month", 1], ["monday", 1]], id="day_of_month then weekday"),
        pytest.param([["friday", 1], ["day_of_month", 1]], id="weekday then day_of_month"),
        pytest.param([["timestamp", 1_800_000_000], ["seconds", 5]], id="timestamp then duration"),
        pytest.param([["seconds", 5], ["timestamp", 1_800_000_000]], id="duration then timestamp"),
        pytest.param([["timestamp", 1_800_000_000], ["at", "08:00"]], id="timestamp with at"),
        pytest.param([["monday", 1], ["timestamp", 1_800_000_000]], id="timestamp with weekday"),
        pytest.param([["timestamp", 1], ["timestamp", 2]], id="timestamp twice"),
        pytest.param([["seconds", 5], ["at", "08:00"]], id="duration with at"),
        pytest.param([["at", "08:00"], ["days", 1]], id="at with duration"),
        pytest.param([["months", 1], ["day_of_month", 3]], id="duration with day_of_month"),
        pytest.param([["monday", 1], ["hours", 1]], id="weekday with duration"),
        pytest.param([["monday", 1], ["at", "08:00"], ["weeks", 1]], id="weekday, at, duration"),
    ],
)
def test_refused_combinations(buffer: list[list[Any]]) -> None:
    with pytest.raises(InvalidArgumentError):
        fire_at(buffer, "UTC", MONDAY_0700)


@pytest.mark.parametrize(
    "buffer",
    [
        pytest.param([["fortnights", 1]], id="unknown unit"),
        pytest.param([["seconds", -1]], id="negative duration"),
        pytest.param([["seconds", "5"]], id="string duration"),
        pytest.param([["seconds", True]], id="bool duration"),
        pytest.param([["months", 1.5]], id="fractional months"),
        pytest.param([["at", "25:00"]], id="bad hour"),
        pytest.param([["at", "08:00\n"]], id="trailing newline"),
        pytest.param([["at", 8]], id="at number"),
        pytest.param([["day_of_month", 32]], id="day 32"),
        pytest.param([["monday", 0]], id="weekday zero"),
        pytest.param([["timestamp", "soon"]], id="timestamp string"),
        pytest.param([["seconds"]], id="malformed entry"),
    ],
)
def test_refused_values(buffer: list[list[Any]]) -> None:
    with pytest.raises(InvalidArgumentError):
        fire_at(buffer, "UTC", MONDAY_0700)


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="Mars/Olympus"):
        fire_at([["seconds", 1]], "Mars/Olympus", MONDAY_0700)


def test_refusal_message_names_the_methods() -> None:
    with pytest.raises(InvalidArgumentError, match="duration cannot be combined with at"):
        fire_at([["seconds", 5], ["at", "08:00"]], "UTC", MONDAY_0700)


def test_fire_at_is_pure() -> None:
    buffer = [["monday", 1], ["at", "08:00"]]
    before = [list(entry) for entry in buffer]
    assert fire_at(buffer, "UTC", MONDAY_0700) == fire_at(buffer, "UTC", MONDAY_0700)
    assert buffer == before


# ---------------------------------------------------------------- with the SDK's Wait


def test_end_to_end_with_sdk_wait() -> None:
    w = Wait().monday().at("08:00:00").set_timezone("Europe/Paris")
    # Monday 2024-04-15 07:00 CEST: today 08:00 CEST.
    assert fire_at(w.buffer, w.timezone, utc(2024, 4, 15, 5)) == utc(2024, 4, 15, 6)
    # Monday 2024-04-15 09:00 CEST: next Monday 08:00 CEST.
    assert fire_at(w.buffer, w.timezone, utc(2024, 4, 15, 7)) == utc(2024, 4, 22, 6)


def test_end_to_end_other_sdk_waits() -> None:
    now = utc(2024, 1, 31, 10)
    assert fire_at(Wait().buffer, Wait().timezone, now) is None
    w = Wait().months(1).days(1).hours(2)
    assert fire_at(w.buffer, w.timezone, now) == utc(2024, 3, 1, 12)
    w = Wait().seconds(10).seconds(20)
    assert fire_at(w.buffer, w.timezone, now) == now + 30
    w = Wait().timestamp(dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc))
    assert fire_at(w.buffer, w.timezone, now) == utc(2024, 6, 1)
    w = Wait().day_of_month(31).at("09:00").set_timezone("America/New_York")
    # 2024-01-31 05:00 EST: today 09:00 EST.
    assert fire_at(w.buffer, w.timezone, now) == utc(2024, 1, 31, 14)
    with pytest.raises(InvalidArgumentError):
        fire_at(Wait().hours(1).monday().buffer, "UTC", now)


def test_sdk_refuses_fractional_months_and_bad_at() -> None:
    with pytest.raises(InvalidArgumentError):
        Wait().months(1.5)
    with pytest.raises(InvalidArgumentError):
        Wait().at("08:00\n")
    assert Wait().years(2.0).buffer == [["years", 2.0]]

"""The timeline picture drawn from `inspect --json` steps: bars, lanes, colours, open bars."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from zenaton_cli.dashboard.timeline_svg import COLOURS, draw


START = dt.datetime(2026, 12, 2, 10, tzinfo=dt.timezone.utc)


def at(seconds: float) -> str:
    return (START + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def task(position: int, start: float, end: float | None, attempts: list[tuple[float, float, str]], status: str, kind: str = "task") -> dict[str, Any]:
    return {
        "position": position,
        "kind": kind,
        "name": f"T{position}",
        "status": status,
        "attempts": len(attempts),
        "started_at": at(start),
        "finished_at": at(end) if end is not None else None,
        "attempt_times": [
            {"attempt": n, "started_at": at(a), "finished_at": at(b), "outcome": outcome}
            for n, (a, b, outcome) in enumerate(attempts, 1)
        ],
    }


def bars(svg: str) -> list[tuple[float, float, float, str]]:
    """(x, y, width, fill) of each bar."""
    found = re.findall(r'<g class="bar"><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="\d+" rx="2" fill="(#\w+)">', svg)
    return [(float(x), float(y), float(w), fill) for x, y, w, fill in found]


def view(status: str, now: float, updated: float) -> dict[str, Any]:
    return {"status": status, "now": at(now), "updated_at": at(updated), "created_at": at(0)}


def test_each_attempt_is_a_bar_coloured_by_its_outcome() -> None:
    steps = [task(1, 0, 5, [(0.1, 1, "retrying"), (2, 3, "retrying"), (4, 5, "completed")], "completed")]
    drawn = bars(draw(steps, view("completed", 9, 5)))
    assert [fill for *_, fill in drawn] == [COLOURS["retrying"], COLOURS["retrying"], COLOURS["completed"]]
    assert len({y for _, y, _, _ in drawn}) == 1  # one after the other: one lane
    xs = [x for x, *_ in drawn]
    assert xs == sorted(xs)


def test_what_overlaps_goes_on_separate_lanes() -> None:
    steps = [
        task(1, 0, 4, [(0, 4, "completed")], "completed", "parallel"),
        task(2, 0, 3, [(0.5, 3, "failed")], "failed", "parallel"),
        task(3, 4, 6, [(4.5, 6, "completed")], "completed"),
    ]
    drawn = bars(draw(steps, view("completed", 9, 6)))
    lanes = {y for _, y, _, _ in drawn}
    assert len(lanes) == 2 and sorted(fill for *_, fill in drawn).count(COLOURS["failed"]) == 1
    (failed,) = [bar for bar in drawn if bar[3] == COLOURS["failed"]]
    (first,) = [bar for bar in drawn if bar[0] == min(b[0] for b in drawn) and bar[3] == COLOURS["completed"]]
    assert failed[1] != first[1]  # the two branches that ran side by side, on two lanes


def test_a_running_attempt_runs_to_now_and_a_wait_is_open() -> None:
    steps = [
        task(1, 0, 1, [(0, 1, "completed")], "completed"),
        {"position": 2, "kind": "wait", "name": "Go", "status": "waiting", "started_at": at(1), "finished_at": None},
    ]
    running = bars(draw(steps, view("running", 11, 1)))
    assert running[1][3] == COLOURS["wait"]
    assert abs((running[1][0] + running[1][2]) - 992) < 1  # to the right edge: now


def test_what_was_open_when_the_instance_was_killed_ends_there() -> None:
    steps = [
        task(1, 0, 1, [(0, 1, "completed")], "completed"),
        {"position": 2, "kind": "wait", "name": "Go", "status": "waiting", "started_at": at(1), "finished_at": None},
    ]
    killed = draw(steps, view("killed", 600_000, 2))  # drawn a week later
    drawn = bars(killed)
    assert drawn[1][3] == COLOURS["killed"]
    assert "+6" not in killed and "d</text>" not in killed  # the axis ends at the kill, not now
    assert drawn[0][2] > 400  # the completed task keeps its share of the picture


def test_names_and_titles_are_escaped() -> None:
    step = task(1, 0, 1, [(0, 1, "completed")], "completed")
    step["name"] = "<script>alert(1)</script>"
    svg = draw([step], view("completed", 2, 1))
    assert "<script>" not in svg and "&lt;script&gt;" in svg

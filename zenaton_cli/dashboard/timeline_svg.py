"""The timeline picture: an instance's task attempts, waits and children as bars on a time axis.

Drawn by the server from the steps of ``inspect --json``: one bar per task attempt (a retry is a
bar of its own) and per wait or child workflow, coloured by outcome; what overlaps in time goes
on separate lanes, so parallel branches lie side by side. Events, pauses, kills and the like are
marks on a lane of their own above the bars. Colours are attributes, not a stylesheet, so the
same drawing works inline in a page and served alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from markupsafe import escape

WIDTH = 1000
LEFT = 8
RIGHT = 8
LANE = 22
BAR = 16
MARK_LANE = 18
AXIS = 26
MAX_LANES = 60
COLOURS = {
    "completed": "#2f9e44",
    "failed": "#e03131",
    "retrying": "#f08c00",
    "running": "#1c7ed6",
    "wait": "#9c9ea8",
    "waited": "#868e96",
    "child": "#7048e8",
    "killed": "#495057",
}
STOPPED = ("completed", "killed", "failed")  # an instance's statuses after which nothing runs
MARK_COLOURS = {"event": "#1098ad", "error": "#e03131", "kill": "#495057", "completed": "#2f9e44"}
TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800]
TICKS += [3600, 7200, 21600, 43200, 86400, 172800, 604800, 2592000]


@dataclass(frozen=True)
class Bar:
    start: float
    end: float
    colour: str
    label: str
    title: str


@dataclass(frozen=True)
class Mark:
    at: float
    colour: str
    title: str


def draw(steps: list[dict[str, Any]], view: dict[str, Any], *, standalone: bool = False) -> str:
    """The SVG markup of the instance's timeline (``standalone``: with its XML namespace declared
    for serving on its own; inline in a page it needs the same)."""
    now = _time(view.get("now")) or _time(view.get("updated_at")) or 0.0
    stopped = view.get("status") in STOPPED
    if stopped:  # what was still open ended with the instance, not now
        now = _time(view.get("updated_at")) or now
    bars, marks = shapes(steps, now, stopped=stopped)
    start = min([b.start for b in bars] + [m.at for m in marks], default=_time(view.get("created_at")) or now)
    end = max([b.end for b in bars] + [m.at for m in marks], default=start)
    span = max(end - start, 0.001)
    lanes = place(bars)
    height = MARK_LANE + max(len(lanes), 1) * LANE + AXIS

    def x(t: float) -> float:
        return LEFT + (t - start) / span * (WIDTH - LEFT - RIGHT)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" class="timeline" role="img" '
        f'aria-label="timeline: {len(bars)} bars on {len(lanes)} lanes, {len(marks)} marks">'
    ]
    if standalone:
        parts.append(f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>')
    for mark in marks:
        cx = x(mark.at)
        parts.append(
            f'<path d="M{cx:.1f} 3 l5 6 l-5 6 l-5 -6 z" fill="{mark.colour}"><title>{escape(mark.title)}</title></path>'
        )
    for number, lane in enumerate(lanes):
        y = MARK_LANE + number * LANE
        for bar in lane:
            left = x(bar.start)
            width = max(x(bar.end) - left, 1.5)
            parts.append(
                f'<g class="bar"><rect x="{left:.1f}" y="{y}" width="{width:.1f}" height="{BAR}" rx="2" '
                f'fill="{bar.colour}"><title>{escape(bar.title)}</title></rect>'
            )
            if width > 8 * min(len(bar.label), 24) + 8:
                parts.append(
                    f'<text x="{left + 4:.1f}" y="{y + 12}" font-size="11" font-family="sans-serif" fill="#ffffff">'
                    f"{escape(bar.label[:24])}</text>"
                )
            parts.append("</g>")
    parts.extend(_axis(start, span, height))
    parts.append("</svg>")
    return "".join(parts)


def shapes(steps: list[dict[str, Any]], now: float, *, stopped: bool = False) -> tuple[list[Bar], list[Mark]]:
    """The bars (attempts, waits, children) and the marks (events and control) of the steps.
    What is still open ends at ``now``: the present, or when the instance ``stopped``."""
    bars: list[Bar] = []
    marks: list[Mark] = []
    for step in steps:
        kind, name = step["kind"], step.get("name") or step["kind"]
        started, finished = _time(step.get("started_at")), _time(step.get("finished_at"))
        where = f"step {step['position']}: " if step.get("position") is not None else ""
        if kind in ("task", "parallel"):
            bars.extend(_attempts(step, name, where, now, stopped))
        elif kind in ("wait", "workflow") and started is not None:
            colour = COLOURS["child" if kind == "workflow" else "wait" if finished is None else "waited"]
            if step["status"] == "killed" or (stopped and finished is None):
                colour = COLOURS["killed"]
            end = finished if finished is not None else now
            title = f"{where}{kind} {name}: {step['status']}, {_length(end - started)}"
            bars.append(Bar(started, max(end, started), colour, name, title))
        elif finished is not None or started is not None:
            at = finished if finished is not None else started
            assert at is not None
            colour = MARK_COLOURS.get(kind, "#5c5f66")
            marks.append(Mark(at, colour, f"{where}{kind} {name if name != kind else ''}".rstrip()))
    return bars, marks


def _attempts(step: dict[str, Any], name: str, where: str, now: float, stopped: bool) -> list[Bar]:
    """One bar per attempt; a journal older than attempt times gives one bar for the step."""
    bars = []
    for attempt in step.get("attempt_times") or []:
        begin, end = _time(attempt.get("started_at")), _time(attempt.get("finished_at"))
        if begin is None or end is None:
            continue
        outcome = attempt.get("outcome") or "completed"
        title = f"{where}{name}, attempt {attempt.get('attempt')}: {outcome}, {_length(end - begin)}"
        bars.append(Bar(begin, end, COLOURS.get(outcome, COLOURS["failed"]), name, title))
    started, finished = _time(step.get("started_at")), _time(step.get("finished_at"))
    running = step["status"] in ("running", "retrying")
    if started is not None and (not bars or running):
        if running:  # the attempt under way (or waiting for its retry): up to now
            begin = max([b.end for b in bars] + [started])
            colour, state = COLOURS["running" if step["status"] == "running" else "retrying"], step["status"]
            if stopped:
                colour, state = COLOURS["killed"], f"{state} when the instance stopped"
            bars.append(Bar(begin, max(now, begin), colour, name, f"{where}{name}: {state}, {_length(now - begin)}"))
        else:
            end = finished if finished is not None else now
            colour = COLOURS.get(step["status"], COLOURS["completed"])
            attempts = step.get("attempts") or 1
            title = f"{where}{name}: {step['status']} after {attempts} attempt(s), {_length(end - started)}"
            bars.append(Bar(started, max(end, started), colour, name, title))
    return bars


def place(bars: list[Bar]) -> list[list[Bar]]:
    """Lanes for the bars: each bar on the first lane free at its start (what overlaps, apart)."""
    lanes: list[list[Bar]] = []
    ends: list[float] = []
    for bar in sorted(bars, key=lambda b: (b.start, b.end)):
        for number, end in enumerate(ends):
            if end <= bar.start:
                lanes[number].append(bar)
                ends[number] = bar.end
                break
        else:
            if len(lanes) < MAX_LANES:
                lanes.append([bar])
                ends.append(bar.end)
            else:  # more side by side than fit: the busiest lane takes it, drawn over
                lanes[-1].append(bar)
                ends[-1] = max(ends[-1], bar.end)
    return lanes


def _axis(start: float, span: float, height: int) -> list[str]:
    step = next((t for t in TICKS if span / t <= 8), TICKS[-1])
    y = height - AXIS + 4
    parts = [f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#adb5bd"/>']
    tick = 0.0
    while tick <= span + 1e-9:
        tx = LEFT + tick / span * (WIDTH - LEFT - RIGHT)
        anchor = "start" if tick == 0 else "end" if tx > WIDTH - 40 else "middle"
        parts.append(f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + 4}" stroke="#adb5bd"/>')
        parts.append(
            f'<text x="{tx:.1f}" y="{y + 16}" font-size="10" font-family="sans-serif" fill="#495057" '
            f'text-anchor="{anchor}">+{_length(tick)}</text>'
        )
        tick += step
    return parts


def _length(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1000:.2f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def _time(text: Any) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()

"""Everything the CLI prints for people (rich tables, timelines, listings), and JSON for scripts.

Commands gather data (plain dicts and lists, as ``--json`` prints them) and call one function
here per view; no command builds a table or a listing itself.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Piped output (scripts, CI logs) gets a wide page instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

STATUS_STYLE = {
    "running": "cyan",
    "paused": "yellow",
    "completed": "green",
    "killed": "magenta",
    "failed": "red",
    "waiting": "cyan",
    "retrying": "yellow",
    "timed out": "yellow",
}


CALL_KINDS = ("send_event", "control", "find", "schedule")  # a workflow's calls to other instances


def error_line(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(one_line(message))}")


def one_line(text: str) -> str:
    """Control characters (newlines, escape sequences, bidi overrides ...) written as escapes, so a
    message that quotes the user's input stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def status_text(status: str, error: Any = None) -> str:
    style = STATUS_STYLE.get(status, "white")
    suffix = " (error)" if error else ""
    return f"[{style}]{escape(status)}{suffix}[/{style}]"


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


# -- instances: list, inspect, find ----------------------------------------------------------


def instances_table(rows: list[dict[str, Any]]) -> None:
    table = _table("id", "kind", "name", "custom id", "env", "status", "created", "updated")
    for row in rows:
        table.add_row(
            row["id"],
            row["kind"],
            escape(row["name"]),
            escape(row["custom_id"] or "-"),
            escape(row["env"]),
            status_text(row["status"]),
            row["created_at"],
            row["updated_at"],
        )
    out.print(table if rows else "no instances")


def instance_detail(view: dict[str, Any], step: int | None = None, output: bool = False, timeline: bool = True) -> None:
    out.print(f"[bold]{escape(view['name'])}[/bold] {view['id']}")
    fields = [
        ("kind", view["kind"]),
        ("custom id", view["custom_id"] or "-"),
        ("env", view["env"]),
        ("version", view["version"] or "-"),
        ("created", view["created_at"]),
        ("updated", view["updated_at"]),
    ]
    out.print(f"  status    {status_text(view['status'], view['error'])}")
    for label, value in fields:
        out.print(f"  {label:<9} {escape(str(value))}")
    if view["error"]:
        error_block(view["error"])
    out.print("\n[bold]properties[/bold]")
    out.print_json(data=view["properties"]) if view["properties"] is not None else out.print("  -")
    if not timeline:
        return
    steps = view["steps"]
    if step is not None:
        steps = [s for s in steps if s["position"] == step]
        if not steps:
            out.print(f"\nno step at position {step}")
            return
    for run in view.get("runs", [])[:-1]:
        out.print(
            f"\n[bold]run {run['run']}[/bold] (archived {run['archived_at']}: rewound to step {run['rewound_to']})"
        )
        timeline_table([s for s in run["steps"] if step is None or s["position"] == step])
    if view.get("run", 1) > 1:
        hint = "" if "runs" in view else "; earlier runs: --all-runs"
        out.print(f"\n[bold]timeline[/bold] (run {view['run']}, current{hint})")
    else:
        out.print("\n[bold]timeline[/bold]")
    timeline_table(steps)
    if step is not None:
        for item in steps:
            if item.get("task_properties") is not None or item.get("attempt_times"):
                task_detail(item)
            if item["kind"] in CALL_KINDS:  # a call to another instance: its target and answer in full
                out.print("\n[bold]call[/bold]")
                out.print_json(data={"target": item.get("target"), "result": item["result"]})
            out.print("\n[bold]properties after this step[/bold]")
            out.print_json(data=item["properties"])
            if item["changed"]:
                out.print("[bold]changed[/bold]")
                out.print_json(data=item["changed"])
            if item["error"]:
                error_block(item["error"])
    if output:
        for item in steps:
            for attempt in item.get("output", []):
                if attempt["stdout"] or attempt["stderr"]:
                    where = f"{escape(item['name'] or '')} (position {item['position']}), attempt {attempt['attempt']}"
                    out.print(f"\n[bold]output of {where}[/bold]")
                    if attempt["stdout"]:
                        out.print(escape(attempt["stdout"].rstrip()))
                    if attempt["stderr"]:
                        out.print(f"[red]{escape(attempt['stderr'].rstrip())}[/red]")


def timeline_table(steps: list[dict[str, Any]]) -> None:
    rows: list[list[tuple[str, str | None]]] = []
    for item in steps:
        outcome = (item["error"] and f"{item['error'].get('class')}: {item['error'].get('message')}") or item["result"]
        if item["kind"] == "rewind" and isinstance(outcome, dict):
            outcome = {k: v for k, v in outcome.items() if k != "request"}  # the inbox item's id: --json has it
        name, target = item["name"] or "", item.get("target")
        if target:  # a call to another instance: which one where_id() named, and what it got
            name += "" if target.get("custom_id") is None else f" ({target['custom_id']})"
            if not item["error"]:
                outcome = _call_outcome(item["kind"], item["result"], target.get("id"))
        status = item["status"]
        rows.append(
            [
                ("-" if item["position"] is None else str(item["position"]), None),
                (item["kind"], None),
                (name, None),
                (_task_cell(item.get("task_properties"), item.get("task_properties_changed")), None),
                (status, STATUS_STYLE.get(status, "white")),
                (str(item["attempts"] or ""), None),
                ((item["started_at"] or "")[11:23], None),
                ("" if item["duration"] is None else f"{item['duration'] * 1000:.0f} ms", None),
                (short(outcome) if outcome is not None else "", None),
                (short(", ".join(item["changed"]), 30), None),
            ]
        )
    columns = ("pos", "kind", "name", "task", "status", "tries", "started", "duration", "result / error", "changed")
    if out.color_system is None:  # no styles to draw (a pipe, a file): the text as it is, at once
        out.file.write(_grid_plain(columns, rows))
    else:
        out.print(_grid(columns, rows), end="")


def _call_outcome(kind: str, result: Any, target_id: str | None) -> Any:
    """A call's answer in the timeline: what was sent to which instance, or what find() read."""
    to = (target_id or "")[:8]
    if kind == "find":
        if not isinstance(result, dict):
            return "none"
        return f"{to} {result.get('status')}: {_compact(result.get('properties'))}"
    asked = result.get("event") or result.get("action") if isinstance(result, dict) else None
    return f"{asked} → {to}"


def _task_cell(properties: Any, changed: dict[str, Any] | None, width: int = 40) -> str:
    """A task's properties in one short line, ``key=value``; ``key=old→new`` for those its
    handle() changed. Empty for other steps."""
    changed = changed or {}
    if not isinstance(properties, dict):
        if properties is None and not changed:
            return ""
        properties = {} if properties is None else {"value": properties}
    parts = []
    for key, value in properties.items():
        if key in changed:
            parts.append(f"{key}={_compact(changed[key]['from'])}→{_compact(changed[key]['to'])}")
        else:
            parts.append(f"{key}={_compact(value)}")
    parts += [f"{key}={_compact(c['from'])}→{_compact(c['to'])}" for key, c in changed.items() if key not in properties]
    return short(", ".join(parts), width)


def _compact(value: Any) -> str:
    return one_line(value) if isinstance(value, str) else json.dumps(value, default=str)


def task_detail(item: dict[str, Any]) -> None:
    """`inspect --step N` of a task: its properties as sent, what handle() changed, each attempt's times."""
    out.print("\n[bold]task properties[/bold] (as sent to the worker)")
    properties = item.get("task_properties")
    out.print_json(data=properties) if properties is not None else out.print("  -")
    if item.get("task_properties_changed"):
        out.print("[bold]changed by handle()[/bold] (last attempt)")
        out.print_json(data=item["task_properties_changed"])
    for attempt in item.get("attempt_times") or []:
        started, finished = attempt["started_at"], attempt["finished_at"]
        took = _took(started, finished)
        pad = " " * max(0, 9 - len(attempt["outcome"]))
        out.print(
            f"  attempt {attempt['attempt']}  {status_text(attempt['outcome'])}{pad}  "
            f"started {started or '-'}  finished {finished or '-'}" + (f"  ({took})" if took else "")
        )


def _took(started: str | None, finished: str | None) -> str:
    """The time between two of the view's ISO times, as the timeline shows a duration."""
    if not started or not finished:
        return ""
    seconds = _dt.datetime.fromisoformat(finished.replace("Z", "+00:00")) - _dt.datetime.fromisoformat(
        started.replace("Z", "+00:00")
    )
    return f"{seconds.total_seconds() * 1000:.0f} ms"


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal (rich's count, skipped for printable ASCII)."""
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


def _widths(columns: tuple[str, ...], rows: list[list[tuple[str, str | None]]]) -> list[int]:
    widths = [_width(c) for c in columns]
    for row in rows:
        for n, (text, _) in enumerate(row):
            width = _width(text)
            if width > widths[n]:
                widths[n] = width
    return widths


def _grid_plain(columns: tuple[str, ...], rows: list[list[tuple[str, str | None]]]) -> str:
    """``_grid``'s text without its styles, as one string."""
    widths = _widths(columns, rows)
    last = len(columns) - 1
    lines = []
    header: list[tuple[str, str | None]] = [(c, None) for c in columns]
    for row in [header, *rows]:
        cells = [" "]
        for n, (text, _) in enumerate(row):
            cells.append(text)
            if n < last:
                cells.append(" " * (widths[n] - _width(text) + 2))
        cells.append("\n")
        lines.append("".join(cells))
    return "".join(lines)


def _grid(columns: tuple[str, ...], rows: list[list[tuple[str, str | None]]]) -> Text:
    """A table laid out as one Text: each column as wide as its widest cell, two spaces apart, the
    header bold. A rich Table lays out every cell on its own, which takes seconds for the
    thousands of rows of a long instance's timeline; this takes milliseconds."""
    widths = _widths(columns, rows)
    grid = Text()
    last = len(columns) - 1
    header: list[tuple[str, str | None]] = [(c, "bold") for c in columns]
    plain: list[str] = []  # unstyled text since the last styled cell: appended as one span
    for row in [header, *rows]:
        plain.append(" ")
        for n, (text, style) in enumerate(row):
            if style is None:
                plain.append(text)
            else:
                grid.append("".join(plain))
                grid.append(text, style=style)
                plain = []
            if n < last:
                plain.append(" " * (widths[n] - _width(text) + 2))
        plain.append("\n")
    grid.append("".join(plain))
    return grid


def error_block(error: dict[str, Any]) -> None:
    out.print(f"\n[red bold]error[/red bold] {escape(str(error.get('class')))}: {escape(str(error.get('message')))}")
    if error.get("traceback"):
        out.print(escape(error["traceback"].rstrip()))


# -- errors ------------------------------------------------------------------------------------


def errors_table(groups: list[dict[str, Any]]) -> None:
    if not groups:
        out.print("no errors")
        return
    table = _table("count", "error", "task", "latest", "message", "ids")
    for group in groups:
        table.add_row(
            str(group["count"]),
            escape(group["class"]),
            escape(group["task"]),
            group["latest"],
            escape(short(group["message"] or "", 50)),
            " ".join(group["ids"]),
        )
    out.print(table)
    out.print("retry one with `zenaton retry ID`, or all with `zenaton retry --all`")


# -- schedules ---------------------------------------------------------------------------------


def schedules_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("no schedules")
        return
    table = _table("id", "target", "cron", "timezone", "next fire", "last fire", "fires", "skips")
    for row in rows:
        target = f"{row['kind']} {row['name']}" + (f" ({row['custom_id']})" if row["custom_id"] else "")
        table.add_row(
            str(row["id"]),
            escape(target),
            escape(str(row["cron"])),
            str(row["timezone"]),
            str(row["next_fire"]),
            str(row["last_fire"] or "-"),
            str(row["fires"]),
            str(row["skips"]),
        )
    out.print(table)


# -- control: pause, resume, kill, retry, send-event, rewind -----------------------------------


def control_outcome(action: str, name: str, instance_id: str, daemon: bool, applied: bool, result: str) -> None:
    """Applied by the daemon, still waiting for it, or queued with no daemon to apply it."""
    action, label = escape(action), f"{escape(name)} {instance_id}"
    if applied:
        out.print(f"{action}: {label} {escape(result)}")
    elif daemon:
        out.print(f"{action} requested for {label} (the daemon has not applied it yet)")
    else:
        out.print(f"{action} queued for {label}")
        err.print("[yellow]warning:[/yellow] no daemon is running; it applies when `zenaton start` runs")


def retried(instances: list[dict[str, str]]) -> None:
    """`retry --all`: the instances it asked the daemon to retry ({"id", "name"} each)."""
    out.print(f"retry requested for {len(instances)} instance(s)")
    for instance in instances:
        out.print(f"  {instance['id']} {escape(instance['name'])}")


def rewind_plan(plan: dict[str, Any], name: str, dry_run: bool) -> None:
    """A rewind's plan (``RewindPlan.summary()``): what it keeps, the entries it archives."""
    label = f"{escape(name)} {plan['id']}"
    if plan["to_step"] != plan["requested_step"]:
        out.print(
            f"step {plan['requested_step']} is part of a Parallel starting at step {plan['to_step']}: "
            f"rewinding to step {plan['to_step']}"
        )
    keep, archive = ("would keep", "would archive") if dry_run else ("keeps", "archives")
    out.print(
        f"rewind {label} to step {plan['to_step']}: {keep} {plan['kept']} journal entries (through seq "
        f"{plan['keep_through_seq']}), {archive} {len(plan['archived'])} as run {plan['archived_run']}:"
    )
    table = _table("seq", "type", "pos", "name")
    for entry in plan["archived"]:
        pos = "-" if entry["position"] is None else str(entry["position"])
        table.add_row(str(entry["seq"]), entry["type"], pos, escape(entry["name"] or ""))
    out.print(table)
    if plan["children_left_alone"]:
        children = ", ".join(plan["children_left_alone"])
        out.print(f"child instances dispatched from step {plan['to_step']} on are left alone: {children}")
    if dry_run:
        out.print("dry run: nothing changed")


# -- daemon and project ------------------------------------------------------------------------


def daemon_status(status: dict[str, Any]) -> None:
    """`status`: as its --json holds it."""
    if status["running"]:
        out.print(f"daemon [green]running[/green] (pid {status['pid']}, up {status['uptime']:.0f} s)")
    else:
        out.print("daemon [yellow]not running[/yellow]")
    out.print(f"store {escape(status['store'])}")
    daemons = status.get("daemons", [])
    if daemons:
        table = _table("daemon", "state", "host", "pid", "started", "heartbeat", "workers", "instances held", "steps/s")
        for d in daemons:
            state = "[green]alive[/green]" if d["alive"] else "[yellow]stale[/yellow]"
            table.add_row(
                d["id"][:8],
                state,
                escape(d["host"]),
                str(d["pid"]),
                d["started_at"],
                f"{d['heartbeat_age']:g} s ago",
                f"{d['busy_workers']}/{d['workers']} busy",
                str(d["instances_held"]),
                f"{d['steps_per_second']:g}",
            )
        out.print(table)
    else:
        out.print("no daemon on this store")
    out.print("instances: " + ", ".join(f"{k} {v}" for k, v in status["instances"].items()))
    out.print(f"tasks queued: {status['tasks_queued']}")


def project_created(directory: str, created: list[str]) -> None:
    """`init` in a new directory: the files it wrote, and what to do next."""
    out.print(f"created a zenaton project in {escape(directory)}:")
    for path in created:
        out.print(f"  {escape(path)}")
    out.print(
        "next: `zenaton start`, then in another shell "
        '`zenaton dispatch WelcomeFlow \'{"email": "ada@example.com", "slack_id": "U1"}\'`'
    )


VERDICT_STYLES = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor_report(checks: list[tuple[str, str, str]]) -> None:
    """`doctor`: a line a check, its verdict first."""
    for name, verdict, detail in checks:
        style = VERDICT_STYLES.get(verdict, "")
        out.print(f"[{style}]{verdict:<4}[/{style}] {name:<9} {escape(one_line(detail))}")


# -- check: will running instances survive the code on disk? -----------------------------------


def check_report(view: dict[str, Any]) -> None:
    """`zenaton check`: per workflow, how many replay cleanly and each one that would break."""
    what = f"{len(view['files'])} exported journal(s)" if view["files"] else f"{view['checked']:,} instance(s) of env"
    where = "" if view["files"] else f" {escape(str(view['env']))}"
    out.print(f"checked {what}{where} against the code in {escape(view['project'])} ({view['seconds']:.2f} s)")
    if not view["classes"]:
        out.print("  nothing to check: no unfinished workflow instance")
    for item in view["classes"]:
        counts = [f"{item['clean']:,} replay cleanly"]
        if item["broken"]:
            counts.append(f"[red]{item['broken']:,} would break[/red]")
        if item["still_failing"]:
            counts.append(f"[yellow]{item['still_failing']:,} still failing[/yellow]")
        out.print(f"  [bold]{escape(item['name'])}[/bold]  " + ", ".join(counts))
        for instance in item["instances"]:
            label = instance.get("file") or instance["id"]
            custom = f"  {instance['custom_id']}" if instance["custom_id"] is not None else ""
            version = f"  {instance['version']}" if instance["version"] else ""
            if instance["journal"] is not None:
                reason = (
                    f"position {instance['position']}: the journal holds {instance['journal']}, "
                    f"the code asks for {instance['code']}"
                )
            else:
                reason = instance["error"] or ""
            style = "red" if instance["outcome"] == "broken" else "yellow"
            out.print(
                f"    [{style}]{instance['outcome']}[/{style}]  {escape(label)}{escape(custom)}{escape(version)}  "
                f"{instance['status']}  {escape(one_line(reason))}"
            )
    if view["broken"]:
        out.print(
            f"[red]{view['broken']:,} would break[/red]: on this code the daemon would pause "
            f"{'it' if view['broken'] == 1 else 'them'} with the error shown (see docs/changing-code.md)"
        )
    elif view["checked"]:
        out.print(
            "[green]every one replays cleanly[/green]"
            + (" (some still fail as before)" if view["still_failing"] else "")
        )

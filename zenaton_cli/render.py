"""Rendering: rich tables and timelines for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def instances_table(rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("id", "kind", "name", "custom id", "env", "status", "created", "updated"):
        table.add_column(column)
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
                    out.print(
                        f"\n[bold]output of {escape(item['name'] or '')} (position {item['position']}), attempt {attempt['attempt']}[/bold]"
                    )
                    if attempt["stdout"]:
                        out.print(escape(attempt["stdout"].rstrip()))
                    if attempt["stderr"]:
                        out.print(f"[red]{escape(attempt['stderr'].rstrip())}[/red]")


def timeline_table(steps: list[dict[str, Any]]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("pos", "kind", "name", "status", "tries", "started", "duration", "result / error", "changed"):
        table.add_column(column)
    for item in steps:
        outcome = (item["error"] and f"{item['error'].get('class')}: {item['error'].get('message')}") or item["result"]
        table.add_row(
            "-" if item["position"] is None else str(item["position"]),
            item["kind"],
            escape(item["name"] or ""),
            status_text(item["status"]),
            str(item["attempts"] or ""),
            (item["started_at"] or "")[11:23],
            "" if item["duration"] is None else f"{item['duration'] * 1000:.0f} ms",
            escape(short(outcome) if outcome is not None else ""),
            escape(short(", ".join(item["changed"]), 30)),
        )
    out.print(table)


def error_block(error: dict[str, Any]) -> None:
    out.print(f"\n[red bold]error[/red bold] {escape(str(error.get('class')))}: {escape(str(error.get('message')))}")
    if error.get("traceback"):
        out.print(escape(error["traceback"].rstrip()))

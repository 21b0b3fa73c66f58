"""errors: what failed, grouped, with the ids to retry."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from zenaton_runtime.client.inspect_views import error_groups

from ..render import out, print_json, short
from ..state import State, common_options


@click.command(short_help="Failed tasks grouped by error class and task name.")
@click.option("--name", default=None, help="Only instances of this workflow or task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def errors(state: State, name: str | None, as_json: bool) -> None:
    """Failed tasks grouped by error class and task name, newest first."""
    groups = error_groups(state.control().failed(name))
    if as_json:
        print_json(groups)
        return
    if not groups:
        out.print("no errors")
        return
    table = Table(box=None, header_style="bold")
    for column in ("count", "error", "task", "latest", "message", "ids"):
        table.add_column(column)
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

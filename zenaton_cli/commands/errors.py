"""errors: what failed, grouped, with the ids to retry."""

from __future__ import annotations

import click

from zenaton_runtime.client.inspect_views import error_groups

from ..render import errors_table, print_json
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
    errors_table(groups)

"""schedule, schedules, unschedule: cron schedules of workflows and tasks."""

from __future__ import annotations

import click
from rich.markup import escape

from zenaton_runtime.client.inspect_views import iso

from ..args import build
from ..render import out, print_json, schedules_table
from ..state import State, common_options
from ..views import schedule_view


@click.command(short_help="Dispatch NAME at every fire time of a CRON expression.")
@click.argument("name")
@click.argument("cron")
@click.argument("args", nargs=-1)
@click.option("--arg", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument (repeatable).")
@click.option("--id", "custom_id", default=None, help="Custom id of each instance (a fire is skipped while one runs).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def schedule(
    state: State,
    name: str,
    cron: str,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    custom_id: str | None,
    as_json: bool,
) -> None:
    """Dispatch workflow or task NAME at every fire time of CRON (5 fields, or 6 with seconds first)."""
    control = state.control(load=True)
    job = build(state.project().job(name), args, kwargs)
    created = control.schedule(job, cron, custom_id)
    if as_json:
        print_json(schedule_view(created))
    else:
        out.print(f"{created.id}  next fire {iso(created.next_fire)}")


@click.command(short_help="Schedules, soonest fire first.")
@click.option("--all-envs", is_flag=True, help="Schedules of every environment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def schedules(state: State, all_envs: bool, as_json: bool) -> None:
    """Schedules, soonest fire first: target, cron, next and last fire, fires so far."""
    rows = [schedule_view(s) for s in state.store.list_schedules(None if all_envs else state.config.env)]
    print_json(rows) if as_json else schedules_table(rows)


@click.command(short_help="Delete a schedule; instances it started keep running.")
@click.argument("ref", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def unschedule(state: State, ref: str, as_json: bool) -> None:
    """Delete a schedule (by id or a 6+ character prefix); instances it started keep running."""
    removed = state.control().unschedule(ref)
    if as_json:
        print_json(schedule_view(removed))
    else:
        out.print(f"unscheduled {removed.id} ({escape(removed.name)}, {escape(removed.cron)})")

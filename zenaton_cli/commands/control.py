"""pause, resume, kill, retry, send-event, rewind: intents the daemon applies.

When a daemon is running, each command waits (briefly) until it has applied the
intent and prints the new status; without one, the intent is queued and applied
at the next `zenaton start`.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from zenaton_runtime.client.control import Control
from zenaton_runtime.engine.rewind_plan import RewindPlan, prepare, request_rewind
from zenaton_runtime.models import Instance
from zenaton_runtime.pidlock import lock_path, read_info

from ..args import build
from ..render import err, out, print_json
from ..state import State, common_options

ACK_TIMEOUT = 5.0  # seconds to wait for a running daemon to apply an intent


def acknowledged(state: State, control: Control, instance: Instance, item_id: int) -> tuple[bool, bool]:
    """(a daemon runs, it applied the item within ACK_TIMEOUT)."""
    daemon = read_info(lock_path(state.config)) is not None
    return daemon, daemon and control.applied(instance.id, item_id, ACK_TIMEOUT)


def report(state: State, control: Control, instance: Instance, action: str, item_id: int, as_json: bool) -> None:
    daemon, applied = acknowledged(state, control, instance, item_id)
    status = control.get(instance.id).status.value
    if as_json:
        print_json({"id": instance.id, "action": action, "applied": applied, "status": status})
        return
    say_outcome(action, instance, daemon, applied, f"is now {status}")


def say_outcome(action: str, instance: Instance, daemon: bool, applied: bool, result: str) -> None:
    """Applied by the daemon, still waiting for it, or queued with no daemon to apply it."""
    label = f"{escape(instance.name)} {instance.id}"
    if applied:
        out.print(f"{action}: {label} {result}")
    elif daemon:
        out.print(f"{action} requested for {label} (the daemon has not applied it yet)")
    else:
        out.print(f"{action} queued for {label}")
        err.print("[yellow]warning:[/yellow] no daemon is running; it applies when `zenaton start` runs")


def _control_command(action: str, help_text: str) -> click.Command:
    @click.command(name=action, help=help_text)
    @click.argument("ref", metavar="ID")
    @click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @common_options
    def command(state: State, ref: str, name: str | None, as_json: bool) -> None:
        control = state.control()
        instance = control.resolve(ref, name)
        item_id = getattr(control, action)(instance)
        report(state, control, instance, action, item_id, as_json)

    return command


pause = _control_command("pause", "Pause an instance: no new steps; running tasks finish.")
resume = _control_command("resume", "Resume a paused instance; a failed step runs again.")
kill = _control_command("kill", "Kill an instance: nothing further runs.")


@click.command(short_help="Retry the failed step of an instance stopped by an error.")
@click.argument("ref", metavar="ID", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every instance stopped by an error.")
@click.option("--name", default=None, help="Workflow or task name (to choose among custom ids, or with --all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def retry(state: State, ref: str | None, retry_all: bool, name: str | None, as_json: bool) -> None:
    """Retry the failed step of an instance paused by an error (or a failed task)."""
    control = state.control()
    if retry_all == bool(ref):
        raise click.UsageError("give an instance ID or --all (not both)")
    if ref:
        instance = control.resolve(ref, name)
        report(state, control, instance, "retry", control.retry(instance), as_json)
        return
    instances = control.failed(name)
    for instance in instances:
        control.retry(instance)
    if as_json:
        print_json({"retried": [i.id for i in instances]})
    else:
        out.print(f"retry requested for {len(instances)} instance(s)")
        for instance in instances:
            out.print(f"  {instance.id} {escape(instance.name)}")


@click.command(name="send-event", short_help="Send EVENT, built from ARGS, to an instance.")
@click.argument("ref", metavar="ID")
@click.argument("event_name", metavar="EVENT")
@click.argument("args", nargs=-1)
@click.option(
    "--arg", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument of the event (repeatable)."
)
@click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def send_event(
    state: State,
    ref: str,
    event_name: str,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    name: str | None,
    as_json: bool,
) -> None:
    """Send EVENT (an Event class of the project, built from ARGS) to an instance."""
    control = state.control(load=True)
    instance = control.resolve(ref, name)
    event: Any = build(state.project().event(event_name), args, kwargs)
    report(state, control, instance, f"event {event_name}", control.send_event(instance, event), as_json)


@click.command(short_help="Re-run a stopped workflow from step N with the current code.")
@click.argument("ref", metavar="ID")
@click.option(
    "--to-step",
    "position",
    type=int,
    required=True,
    metavar="N",
    help="The step (its position, as `inspect` shows) to run again; later steps run again too.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be archived; change nothing.")
@click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def rewind(state: State, ref: str, position: int, dry_run: bool, name: str | None, as_json: bool) -> None:
    """Restart a paused, completed or killed workflow from step N with the current code.

    The journal before step N is kept; the rest is archived (see `inspect --all-runs`).
    Child instances already dispatched from step N on are left alone.
    """
    control = state.control()
    instance = control.resolve(ref, name)
    if dry_run:
        plan = prepare(state.store, instance, position)
        if as_json:
            print_json({**plan.summary(), "action": "rewind", "dry_run": True})
        else:
            _show_plan(instance, plan, True)
        return
    plan, item_id = request_rewind(state.store, instance, position)
    daemon, applied = acknowledged(state, control, instance, item_id)
    refused = applied and len(state.store.archive(instance.id)) < plan.run
    status = control.get(instance.id).status.value
    if as_json:
        print_json(
            {
                **plan.summary(),
                "action": "rewind",
                "dry_run": False,
                "applied": applied and not refused,
                "refused": refused,
                "status": status,
            }
        )
        return
    _show_plan(instance, plan, False)
    if refused:
        err.print(f"[yellow]warning:[/yellow] the daemon refused the rewind (see its log); {instance.id} is {status}")
    else:
        say_outcome("rewind", instance, daemon, applied, f"is now {status} (run {plan.run + 1})")


def _show_plan(instance: Instance, plan: RewindPlan, dry_run: bool) -> None:
    label = f"{escape(instance.name)} {instance.id}"
    if plan.position != plan.requested:
        out.print(
            f"step {plan.requested} is part of a Parallel starting at step {plan.position}: rewinding to step {plan.position}"
        )
    keep, archive = ("would keep", "would archive") if dry_run else ("keeps", "archives")
    out.print(
        f"rewind {label} to step {plan.position}: {keep} {len(plan.kept)} journal entries (through seq "
        f"{plan.keep_through_seq}), {archive} {len(plan.archived)} as run {plan.run}:"
    )
    table = Table(box=None, header_style="bold")
    for column in ("seq", "type", "pos", "name"):
        table.add_column(column)
    for entry in plan.archived:
        pos = "-" if entry.position is None else str(entry.position)
        table.add_row(str(entry.seq), entry.type.value, pos, escape(entry.name or ""))
    out.print(table)
    if plan.children:
        out.print(f"child instances dispatched from step {plan.position} on are left alone: {', '.join(plan.children)}")
    if dry_run:
        out.print("dry run: nothing changed")

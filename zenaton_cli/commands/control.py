"""pause, resume, kill, retry, send-event: intents the daemon applies.

When a daemon is running, each command waits (briefly) until it has applied the
intent and prints the new status; without one, the intent is queued and applied
at the next `zenaton start`.
"""
from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from runtime.control import Control
from runtime.daemon import lock_path, read_info
from runtime.models import Instance

from ..args import build
from ..render import err, out, print_json
from ..state import State, common_options

ACK_TIMEOUT = 5.0  # seconds to wait for a running daemon to apply an intent


def report(state: State, control: Control, instance: Instance, action: str, item_id: int, as_json: bool) -> None:
    daemon = read_info(lock_path(state.config)) is not None
    applied = daemon and control.applied(instance.id, item_id, ACK_TIMEOUT)
    status = control.get(instance.id).status.value
    if as_json:
        print_json({"id": instance.id, "action": action, "applied": applied, "status": status})
        return
    if applied:
        out.print(f"{action}: {escape(instance.name)} {instance.id} is now {status}")
    elif daemon:
        out.print(f"{action} requested for {escape(instance.name)} {instance.id} (the daemon has not applied it yet)")
    else:
        out.print(f"{action} queued for {escape(instance.name)} {instance.id}")
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
resume = _control_command("resume", "Resume a paused instance (retries the failed step if paused by an error).")
kill = _control_command("kill", "Kill an instance: nothing further runs.")


@click.command()
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


@click.command(name="send-event")
@click.argument("ref", metavar="ID")
@click.argument("event_name", metavar="EVENT")
@click.argument("args", nargs=-1)
@click.option("--arg", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument of the event (repeatable).")
@click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def send_event(state: State, ref: str, event_name: str, args: tuple[str, ...], kwargs: tuple[str, ...],
               name: str | None, as_json: bool) -> None:
    """Send EVENT (an Event class of the project, built from ARGS) to an instance."""
    control = state.control(load=True)
    instance = control.resolve(ref, name)
    event: Any = build(state.project().event(event_name), args, kwargs)
    report(state, control, instance, f"event {event_name}", control.send_event(instance, event), as_json)

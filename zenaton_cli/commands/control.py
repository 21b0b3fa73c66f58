"""pause, resume, kill, retry, send-event, rewind: intents the daemon applies.

Each posts an inbox item through ``Control``. When a daemon is running, the command waits
(briefly) until it has taken the item, then prints the outcome: the new status, and for a
rewind what the daemon journaled (applied, or refused and why). Without one, the intent is
queued and applied at the next `zenaton start`.
"""

from __future__ import annotations

from typing import Any

import click

from zenaton_runtime.client.control import Control
from zenaton_runtime.errors import StateError
from zenaton_runtime.models import Instance
from zenaton_runtime.pidlock import lock_path, read_info

from ..args import build
from ..render import control_outcome, print_json, retried, rewind_plan
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
    control_outcome(action, instance.name, instance.id, daemon, applied, f"is now {status}")


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
        retried([{"id": i.id, "name": i.name} for i in instances])


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
    Child instances already dispatched from step N on are left alone. When a daemon runs, this
    waits for its answer: the run the rewind started, or its refusal (exit 1).
    """
    control = state.control()
    instance = control.resolve(ref, name)
    request = control.rewind(instance, position, dry_run=dry_run)
    plan = request.plan.summary()
    if request.item_id is None:  # a dry run: nothing posted
        print_json({**plan, "action": "rewind", "dry_run": True}) if as_json else rewind_plan(plan, instance.name, True)
        return
    daemon, _ = acknowledged(state, control, instance, request.item_id)
    outcome = control.rewind_outcome(request)
    status = control.get(instance.id).status.value
    if as_json:
        print_json(
            {
                **plan,
                "action": "rewind",
                "dry_run": False,
                "applied": outcome.applied,
                "refused": outcome.refused,
                "reason": outcome.reason,
                "status": status,
            }
        )
    else:
        rewind_plan(plan, instance.name, False)
    if outcome.refused:
        raise StateError(
            f"the daemon refused to rewind {instance.name} {instance.id}: {outcome.reason or 'see its log'}; "
            f"it is {status}"
        )
    if not as_json:
        result = f"is now {status}" + (f" (run {outcome.run})" if outcome.run is not None else "")
        if outcome.to_step is not None and outcome.to_step != request.plan.position:
            result += f", from step {outcome.to_step} (its journal changed since the plan)"
        control_outcome("rewind", instance.name, instance.id, daemon, outcome.applied, result)

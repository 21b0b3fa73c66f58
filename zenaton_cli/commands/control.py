"""pause, resume, kill, retry: control intents the daemon applies."""
from __future__ import annotations

import click

from ..render import out, print_json
from ..state import State, common_options


def _control_command(action: str, help_text: str) -> click.Command:
    @click.command(name=action, help=help_text)
    @click.argument("ref", metavar="ID")
    @click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @common_options
    def command(state: State, ref: str, name: str | None, as_json: bool) -> None:
        control = state.control()
        instance = control.resolve(ref, name)
        getattr(control, action)(instance)
        if as_json:
            print_json({"id": instance.id, "requested": action})
        else:
            out.print(f"{action} requested for {instance.name} {instance.id}")

    return command


pause = _control_command("pause", "Pause an instance: no new steps; running tasks finish.")
resume = _control_command("resume", "Resume a paused instance (retries the failed step if paused by an error).")
kill = _control_command("kill", "Kill an instance: nothing further runs.")
retry = _control_command("retry", "Retry the failed step of an instance paused by an error (or a failed task).")

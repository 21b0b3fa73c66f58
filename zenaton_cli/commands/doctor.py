"""doctor: is everything in order? One line a check, and a verdict."""

from __future__ import annotations

import click

from ..render import doctor_report, print_json
from ..state import State, common_options


@click.command(short_help="Check the config, code, store, disk, daemon and stuck instances.")
@click.option(
    "--task-age",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds a task may run before it is reported.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def doctor(state: State, task_age: float, as_json: bool) -> int:
    """Check, one line each: the config parses and names a loadable project, its classes import,
    the store opens (schema version, integrity), free disk space, the daemon, stuck instances,
    versions. Exit 1 when a check fails."""
    from ..doctor import FAIL, Doctor  # imports the project's code and the stores: only when it runs

    examined = Doctor(state.project_dir, state.env, task_age=task_age)
    checks = examined.run()
    if as_json:
        print_json(
            {
                "healthy": examined.healthy,
                "checks": [{"check": c.name, "verdict": c.verdict, "detail": c.detail, **c.data} for c in checks],
            }
        )
    else:
        doctor_report([(c.name, c.verdict, c.detail) for c in checks])
    return 0 if all(c.verdict != FAIL for c in checks) else 1

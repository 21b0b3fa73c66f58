"""The zenaton command group; commands are added explicitly below."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import click

from zenaton.exceptions import ExternalError
from zenaton_runtime.errors import ZenatonError

from .commands import (
    backup,
    check,
    control,
    daemon,
    dashboard,
    doctor,
    errors,
    init,
    instances,
    migrate,
    retention,
    schedules,
    service,
)
from .render import error_line
from .state import State


class _Group(click.Group):
    """Lists its commands in the order they are added (by topic), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project directory (default: found from the working directory upwards).",
)
@click.option("--env", default=None, help="Environment (default: ZENATON_APP_ENV or zenaton.toml).")
@click.version_option(package_name="zenaton")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, env: str | None) -> None:
    """Zenaton: durable workflows as code, run locally."""
    ctx.obj = State(project, env)


cli.add_command(init.init)
cli.add_command(daemon.start)
cli.add_command(daemon.stop)
cli.add_command(daemon.status)
cli.add_command(instances.dispatch)
cli.add_command(instances.list_)
cli.add_command(instances.inspect)
cli.add_command(instances.wait)
cli.add_command(instances.find)
cli.add_command(errors.errors)
cli.add_command(control.pause)
cli.add_command(control.resume)
cli.add_command(control.kill)
cli.add_command(control.retry)
cli.add_command(control.send_event)
cli.add_command(control.rewind)
cli.add_command(check.export)
cli.add_command(check.check)
cli.add_command(schedules.schedule)
cli.add_command(schedules.schedules)
cli.add_command(schedules.unschedule)
cli.add_command(dashboard.dashboard)
cli.add_command(doctor.doctor)
cli.add_command(backup.backup)
cli.add_command(backup.restore)
cli.add_command(retention.prune)
cli.add_command(retention.vacuum)
cli.add_command(migrate.migrate)
cli.add_command(service.service)
cli.add_command(daemon.listen)
_where_id = copy.copy(instances.find)
_where_id.short_help = "Same as find (the original SDK's where_id)."
cli.add_command(_where_id, name="where-id")


def _not_utf8(argv: list[str]) -> str | None:
    """The first argument holding bytes that are not UTF-8 (Python keeps them as surrogates)."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg
    return None


def main() -> None:
    """Entry point: user mistakes become one clear line and exit code 1."""
    bad = _not_utf8(sys.argv[1:])
    if bad is not None:  # it could reach neither the store nor the terminal: refuse it as a usage error
        error_line(f"argument {bad!r} is not valid UTF-8 text")
        sys.exit(2)
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        error_line("aborted")
        sys.exit(1)
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (ZenatonError, ExternalError) as error:
        error_line(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # a bug of ours, or the system refusing something: still one line
        if os.environ.get("ZENATON_DEBUG"):
            raise
        error_line(f"unexpected {type(error).__name__}: {error} (set ZENATON_DEBUG=1 to see the traceback)")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

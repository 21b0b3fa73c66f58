"""start, stop, status: the daemon's life."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import click

from zenaton_runtime.errors import DaemonError
from zenaton_runtime.pidlock import lock_path, read_info
from zenaton_runtime.project.config import Overrides

from ..daemon_log import BACKUPS, FORMATS, MAX_BYTES, StepLog
from ..render import daemon_status, out, print_json
from ..state import State, common_options
from ..views import status_view
from .dashboard import beside_the_daemon


@click.command(short_help="Run the daemon in the foreground.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=None, help="Task workers (default from zenaton.toml, 8)."
)
@click.option(
    "--reload/--no-reload",
    "reload",
    default=None,
    help="Reload the project when its files change (default from zenaton.toml: on).",
)
@click.option("--dashboard", "with_dashboard", is_flag=True, help="Also serve the dashboard (as `zenaton dashboard`).")
@click.option(
    "--dashboard-port", type=click.IntRange(0, 65535), default=None, help="The dashboard's port (default 8025)."
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default=None,
    help="plain lines, or one JSON object a line (default from zenaton.toml: plain).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the log there, rotated by size, instead of stderr.",
)
@click.option(
    "--log-max-bytes",
    type=click.IntRange(min=1024),
    default=MAX_BYTES,
    show_default=True,
    help="Rotate past this size.",
)
@click.option(
    "--log-backups", type=click.IntRange(min=1), default=BACKUPS, show_default=True, help="Rotated files kept."
)
@common_options
def start(
    state: State,
    concurrency: int | None,
    reload: bool | None,
    with_dashboard: bool,
    dashboard_port: int | None,
    log_format: str | None,
    log_file: Path | None,
    log_max_bytes: int,
    log_backups: int,
) -> int:
    """Run the daemon in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""

    from zenaton_runtime.daemon import run_daemon  # the engine, only for the commands that run it

    config = state.config
    log = StepLog(
        log_format or config.log_format,
        log_file or config.log_file,
        max_bytes=log_max_bytes,
        backups=log_backups,
    )
    board = beside_the_daemon(state, dashboard_port) if with_dashboard else None
    try:
        return run_daemon(config, concurrency=concurrency, log=log, reload=reload)
    finally:
        log.close()
        if board is not None:
            board.stop()


@click.command(short_help="The original agent's command line: the same as start.")
@click.option("--boot", default=None, help="The file that imports the project's workflows and tasks.")
@click.option(
    "--env", "dotenv", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A .env file to read."
)
@click.option("--app_id", "app_id", default=None, help="App id (instead of ZENATON_APP_ID).")
@click.option("--api_token", "api_token", default=None, help="Accepted for compatibility; nothing checks it.")
@click.option("--app_env", "app_env", default=None, help="The environment to run.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=None, help="Task workers (default from zenaton.toml, 8)."
)
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None, help="Project directory.")
def listen(
    boot: str | None,
    dotenv: Path | None,
    app_id: str | None,
    api_token: str | None,
    app_env: str | None,
    concurrency: int | None,
    project: Path | None,
) -> int:
    """The original agent's command line: the same as `zenaton start`."""
    overrides = Overrides(env=app_env, boot=boot, dotenv=dotenv, app_id=app_id, api_token=api_token)
    state = State(project, app_env, overrides)
    try:
        from zenaton_runtime.daemon import run_daemon  # the engine, only for the commands that run it

        config = state.config
        log = StepLog(config.log_format, config.log_file)
        try:
            return run_daemon(config, concurrency=concurrency, log=log)
        finally:
            log.close()
    finally:
        state.close()


@click.command()
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for it to stop.")
@common_options
def stop(state: State, timeout: float) -> None:
    """Stop the running daemon (it finishes running tasks first)."""
    info = read_info(lock_path(state.config))
    if info is None:
        raise DaemonError("no daemon is running for this project")
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while read_info(lock_path(state.config)) is not None:
        if time.monotonic() > deadline:
            raise DaemonError(f"the daemon (pid {info.pid}) did not stop within {timeout:g} s")
        time.sleep(0.05)
    out.print(f"daemon stopped (pid {info.pid})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def status(state: State, as_json: bool) -> None:
    """Whether a daemon runs; the daemons on the store; instances by status; tasks queued."""
    data = status_view(state.config, state.store)
    print_json(data) if as_json else daemon_status(data)

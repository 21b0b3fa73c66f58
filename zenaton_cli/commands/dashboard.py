"""dashboard: serve the project's dashboard on this machine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading

import click

from zenaton_runtime.errors import ZenatonError

from ..render import out
from ..state import State, common_options


def missing_extra() -> ZenatonError:
    return ZenatonError('the dashboard needs its extra: pip install "zenaton[dashboard]"')


def announce(url: str, host: str) -> None:
    """The address to open, and a word of warning when it is reachable from other machines."""
    from ..dashboard.server import loopback

    out.print(f"Zenaton dashboard: [link={url}]{url}[/link]", soft_wrap=True)
    if not loopback(host):
        out.print(
            f"[yellow]warning:[/yellow] listening on {host}: other machines can reach it; anyone with the token "
            "can pause, kill and rewind. Prefer an SSH tunnel to 127.0.0.1 (see the docs).",
            soft_wrap=True,
        )
    out.file.flush()


@click.command(short_help="Serve the dashboard (instances, errors, schedules) in a browser.")
@click.option("--host", default=None, help="Address to listen on (default from zenaton.toml: 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default from zenaton.toml: 8025).")
@click.option(
    "--allowed-host", "allowed_hosts", multiple=True, metavar="NAME", help="Another name this dashboard answers for."
)
@click.option("--new-token", is_flag=True, help="Make a new access token (the old one stops working).")
@click.option("--parent-pid", type=int, default=None, hidden=True)  # the daemon that started it (start --dashboard)
@common_options
def dashboard(
    state: State,
    host: str | None,
    port: int | None,
    allowed_hosts: tuple[str, ...],
    new_token: bool,
    parent_pid: int | None,
) -> None:
    """Serve the dashboard on 127.0.0.1 and print its address with the access token.

    Every request needs the token (kept in .zenaton/dashboard.token); actions go through the
    same control API as `zenaton pause`, `kill`, `retry`... Stop it with Ctrl-C.
    """
    try:
        from ..dashboard.access import load_token
        from ..dashboard.server import serve
    except ImportError:
        raise missing_extra() from None
    from ..dashboard.server import loopback

    config = state.config
    if host is None and not loopback(config.dashboard_host):  # a file shared by a team must not open it up
        raise ZenatonError(
            f"zenaton.toml sets [dashboard] host = {config.dashboard_host!r}, beyond this machine: "
            f"say so on the command line (--host {config.dashboard_host}), or reach it through SSH"
        )
    token = load_token(config.state_dir, rotate=new_token)
    serve(
        config,
        token,
        host=host if host is not None else config.dashboard_host,
        port=port if port is not None else config.dashboard_port,
        allowed_hosts=allowed_hosts,
        announce=announce,
        parent_pid=parent_pid,
    )


class Companion:
    """`zenaton dashboard` run by `zenaton start --dashboard` as a second process: its address is
    printed before the daemon starts, its output follows the daemon's, and it stops with the
    daemon (or by itself when the daemon is killed: it watches its parent)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def beside_the_daemon(state: State, port: int | None) -> Companion:
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise missing_extra()
    command = [sys.executable, "-m", "zenaton_cli", "dashboard", "--project", str(state.config.root)]
    command += ["--env", state.env] if state.env else []
    command += ["--port", str(port)] if port is not None else []
    command += ["--parent-pid", str(os.getpid())]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    said = []
    for line in process.stdout:  # until it listens (its address) or gives up (its error)
        if line.startswith("Zenaton dashboard:"):
            out.print(line.rstrip("\n"), soft_wrap=True, highlight=False, markup=False)
            out.file.flush()
            break
        said.append(line.strip())
    else:
        process.wait()
        reason = next((s.removeprefix("error: ") for s in reversed(said) if s), f"exit code {process.returncode}")
        raise ZenatonError(f"the dashboard did not start: {reason}")
    threading.Thread(target=_relay, args=(process.stdout,), daemon=True).start()
    return Companion(process)


def _relay(lines: object) -> None:
    """The rest of the dashboard's output, after the daemon's own lines."""
    for line in lines:  # type: ignore[attr-defined]
        sys.stderr.write(line)
        sys.stderr.flush()

"""dashboard: serve the project's dashboard on this machine."""

from __future__ import annotations

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
    config = state.config
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

"""service install / uninstall: the project's daemon as a systemd service."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import click

from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.project.config import Config

from ..render import out
from ..state import State, common_options

MARK = "# Written by `zenaton service install`; `zenaton service uninstall` removes it."
SYSTEM_UNITS = Path("/etc/systemd/system")
STOP_MARGIN = 15  # seconds systemd waits beyond the stop grace: the daemon re-queues what is cut short


def unit_name(config: Config, name: str | None) -> str:
    base = name or f"zenaton-{config.app_id}"
    slug = re.sub(r"[^A-Za-z0-9:_.\\-]+", "-", base).strip("-")
    if not slug:
        raise ZenatonError(f"{base!r} cannot name a systemd unit; give --name")
    return slug if slug.endswith(".service") else f"{slug}.service"


def user_units() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"


def zenaton_command() -> list[str]:
    """How systemd starts this very installation's `zenaton` (absolute paths)."""
    script = Path(sys.executable).parent / "zenaton"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "zenaton_cli"]


def unit_text(config: Config, *, env: str | None, user: bool) -> str:
    """The unit: the daemon in the project's folder, its .env, restarted after a failure, stopped
    with SIGTERM and given the stop grace to let running tasks finish; ready when it says so."""
    start = [*zenaton_command(), "start", "--project", str(config.root)]
    if env:
        start += ["--env", env]
    return "\n".join(
        [
            MARK,
            "[Unit]",
            f"Description=Zenaton daemon of {config.app_id} ({config.root})",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            f"WorkingDirectory={config.root}",
            f"EnvironmentFile=-{config.root / '.env'}",
            f"ExecStart={shlex.join(start)}",
            "Restart=on-failure",
            "RestartSec=2",
            "KillSignal=SIGTERM",
            "KillMode=mixed",
            f"TimeoutStopSec={int(config.stop_grace) + STOP_MARGIN}",
            "",
            "[Install]",
            f"WantedBy={'default.target' if user else 'multi-user.target'}",
            "",
        ]
    )


def _systemctl(user: bool) -> str:
    return "systemctl --user" if user else "systemctl"


@click.group(short_help="Run the daemon as a systemd service.")
def service() -> None:
    """Install the project's daemon as a systemd service, or remove it."""


@service.command(short_help="Write the systemd unit of this project's daemon.")
@click.option("--user", is_flag=True, help="A unit of your user's systemd (no root needed).")
@click.option("--name", default=None, help="The unit's name (default: zenaton-APP_ID).")
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write it there instead of systemd's folder.",
)
@click.option("--print", "print_only", is_flag=True, help="Print the unit; write nothing.")
@common_options
def install(state: State, user: bool, name: str | None, unit_dir: Path | None, print_only: bool) -> None:
    """Write the unit: the daemon in the project's folder, its .env, restarted on failure,
    stopped with SIGTERM and the configured grace; then say how to enable it."""
    config = state.config
    text = unit_text(config, env=state.env, user=user)
    if print_only:
        out.print(text, markup=False, highlight=False, end="")
        return
    unit = unit_name(config, name)
    folder = unit_dir or (user_units() if user else SYSTEM_UNITS)
    path = folder / unit
    if path.exists() and MARK not in path.read_text(errors="replace"):
        raise ZenatonError(f"{path} exists and was not written by zenaton; remove it or choose another --name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{unit}.tmp")
        temporary.write_text(text)
        temporary.replace(path)  # never a half-written unit
    except OSError as error:
        hint = "; run as root, or use --user" if not user and unit_dir is None else ""
        raise ZenatonError(f"cannot write {path}: {error.strerror or error}{hint}") from None
    systemctl = _systemctl(user)
    out.print(f"wrote {path}", markup=False)
    out.print(f"enable and start it with: {systemctl} daemon-reload && {systemctl} enable --now {unit}", markup=False)
    out.print(f"its log: journalctl {'--user ' if user else ''}-u {unit} -f", markup=False)


@service.command(short_help="Remove the systemd unit `service install` wrote.")
@click.option("--user", is_flag=True, help="The unit of your user's systemd.")
@click.option("--name", default=None, help="The unit's name (default: zenaton-APP_ID).")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Its folder.")
@common_options
def uninstall(state: State, user: bool, name: str | None, unit_dir: Path | None) -> None:
    """Remove the unit (stop and disable it first: the command says how)."""
    unit = unit_name(state.config, name)
    path = (unit_dir or (user_units() if user else SYSTEM_UNITS)) / unit
    if not path.is_file():
        raise ZenatonError(f"no unit {path}")
    if MARK not in path.read_text(errors="replace"):
        raise ZenatonError(f"{path} was not written by zenaton; left alone")
    systemctl = _systemctl(user)
    try:
        path.unlink()
    except OSError as error:
        raise ZenatonError(f"cannot remove {path}: {error.strerror or error}") from None
    out.print(f"removed {path}", markup=False)
    out.print(f"if it was running: {systemctl} disable --now {unit}; then {systemctl} daemon-reload", markup=False)

"""init: a new project from the packaged templates, or a zenaton.toml for an existing one."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from zenaton_runtime.errors import ZenatonError

from ..render import out, project_created

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

RENAMES = {"gitignore": ".gitignore"}


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def init(directory: Path) -> None:
    """Create a project in DIRECTORY (default: here).

    In a directory that already holds a Zenaton project (a boot.py), only a
    zenaton.toml pointing at it is added; nothing is overwritten.
    """
    templates = files("zenaton_cli.templates") / "project"
    if not templates.is_dir():
        raise ZenatonError("project templates not found in the installed zenaton_cli package; reinstall zenaton")
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise ZenatonError(f"{directory} exists and is not a directory")
    if (directory / "zenaton.toml").exists():
        raise ZenatonError(f"{directory / 'zenaton.toml'} already exists; nothing to do")
    directory.mkdir(parents=True, exist_ok=True)
    name = directory.name or "zenaton"
    config = (templates / "zenaton.toml").read_text().replace("{name}", _toml_string(name))
    if (directory / "boot.py").is_file():
        (directory / "zenaton.toml").write_text(config)
        out.print(
            f'found an existing Zenaton project in {escape(str(directory))}; added zenaton.toml (boot = "boot.py")'
        )
        return
    created = []
    for relative, source in _template_files(templates):
        target = directory / RENAMES.get(relative, relative)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative == "zenaton.toml":
            target.write_text(config)
        else:
            target.write_bytes(source.read_bytes())
        created.append(str(target.relative_to(directory)))
    project_created(str(directory), created)


def _template_files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """Every file under the template folder, by its path relative to it, sorted."""
    found: list[tuple[str, Traversable]] = []
    for entry in folder.iterdir():
        if entry.name == "__pycache__":
            continue
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            found += _template_files(entry, relative + "/")
        else:
            found.append((relative, entry))
    return sorted(found)


def _toml_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')

"""init: a new project from templates/, or a zenaton.toml for an existing one."""
from __future__ import annotations

import shutil
from pathlib import Path

import click
from rich.markup import escape

from runtime.errors import ZenatonError

from ..render import out

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "project"
RENAMES = {"gitignore": ".gitignore"}


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def init(directory: Path) -> None:
    """Create a project in DIRECTORY (default: here).

    In a directory that already holds a Zenaton project (a boot.py), only a
    zenaton.toml pointing at it is added; nothing is overwritten.
    """
    if not TEMPLATES.is_dir():
        raise ZenatonError(f"project templates not found at {TEMPLATES}")
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise ZenatonError(f"{directory} exists and is not a directory")
    if (directory / "zenaton.toml").exists():
        raise ZenatonError(f"{directory / 'zenaton.toml'} already exists; nothing to do")
    directory.mkdir(parents=True, exist_ok=True)
    name = directory.name or "zenaton"
    config = (TEMPLATES / "zenaton.toml").read_text().replace("{name}", _toml_string(name))
    if (directory / "boot.py").is_file():
        (directory / "zenaton.toml").write_text(config)
        out.print(f"found an existing Zenaton project in {escape(str(directory))}; added zenaton.toml (boot = \"boot.py\")")
        return
    created = []
    for source in sorted(TEMPLATES.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        relative = source.relative_to(TEMPLATES)
        target = directory / RENAMES.get(str(relative), str(relative))
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.name == "zenaton.toml":
            target.write_text(config)
        else:
            shutil.copyfile(source, target)
        created.append(str(target.relative_to(directory)))
    out.print(f"created a zenaton project in {escape(str(directory))}:")
    for path in created:
        out.print(f"  {escape(path)}")
    out.print("next: `zenaton start`, then in another shell "
              "`zenaton dispatch WelcomeFlow '{\"email\": \"ada@example.com\", \"slack_id\": \"U1\"}'`")


def _toml_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')

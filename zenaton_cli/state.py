"""What every command shares: --project, --env, and lazily opened config and store."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from zenaton_runtime.client.control import Control
from zenaton_runtime.project.config import Config, Overrides, load_config
from zenaton_runtime.project.loader import Project, load_project
from zenaton_runtime.store import Store, open_store


class State:
    def __init__(self, project: Path | None, env: str | None, overrides: Overrides | None = None) -> None:
        self.project_dir = project
        self.env = env
        self.overrides = overrides
        self._config: Config | None = None
        self._store: Store | None = None
        self._project: Project | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.project_dir, env=self.env, overrides=self.overrides)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.store_url, durability=self.config.durability)
        return self._store

    def project(self, load: bool = False) -> Project:
        """The project; ``load`` imports its code (needed to build objects by class name)."""
        if self._project is None or (load and not self._project.classes):
            config = self.config
            self._project = load_project(config.root, config.boot, config.module) if load else Project(config.root)
        return self._project

    def control(self, load: bool = False) -> Control:
        return Control(self.store, self.project(load).codec, self.config.env, self.config.timezone)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--project and --env on every command; passes the State as ``state``."""

    @click.option(
        "--project",
        "project",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project directory (default: found from the working directory upwards).",
    )
    @click.option("--env", "env", default=None, help="Environment (default: ZENATON_APP_ENV or zenaton.toml).")
    @functools.wraps(command)
    def wrapper(*args: Any, project: Path | None, env: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        parent: State | None = ctx.find_object(State)
        state = State(project or (parent.project_dir if parent else None), env or (parent.env if parent else None))
        ctx.call_on_close(state.close)
        return command(*args, state=state, **kwargs)

    return wrapper

"""The pytest plugin (registered through the ``pytest11`` entry point): the ``zenaton_env``
fixture, a ``zenaton.testing.WorkflowEnvironment`` for one test, closed after it.

The project is the nearest directory holding a zenaton.toml (or a boot.py) from the test file
upwards, else pytest's rootdir; the ``zenaton_project`` ini option names it instead (relative
to the rootdir). Loading the plugin imports nothing of the engine: the fixture does, when used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "zenaton_project",
        "the zenaton project the zenaton_env fixture loads (default: found from each test file upwards)",
        default="",
    )


@pytest.fixture
def zenaton_env(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A WorkflowEnvironment on the project's code: in-process engine, memory store, fake clock."""
    from zenaton.testing import WorkflowEnvironment
    from zenaton_runtime.testing.environment import find_project

    configured = str(request.config.getini("zenaton_project") or "")
    rootpath = Path(request.config.rootpath)
    root = (rootpath / configured) if configured else (find_project(Path(request.path).parent) or rootpath)
    with WorkflowEnvironment(root) as env:
        yield env

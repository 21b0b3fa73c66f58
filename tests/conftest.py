from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.cli_helpers import engine, isolated, project  # noqa: F401  (fixtures of the CLI tests)
from tests.figures import FIGURES
from tests.harness import Harness, flow_project

flow_project()  # puts the test project (flowlib) on sys.path before test modules import it


@pytest.fixture(params=["sqlite", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path) -> Iterator[Harness]:
    url = f"sqlite:///{tmp_path}/zenaton.db" if request.param == "sqlite" else "memory://"
    h = Harness(url)
    yield h
    h.close()


@pytest.fixture
def sqlite_harness(tmp_path) -> Iterator[Harness]:
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    yield h
    h.close()


@pytest.fixture(scope="session", autouse=True)
def reliability_figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Writes what the reliability tests measured to reliability-figures.json."""
    yield
    if FIGURES:
        path = tmp_path_factory.getbasetemp() / "reliability-figures.json"
        path.write_text(json.dumps(FIGURES, indent=2) + "\n")
        FIGURES["_file"] = {"path": str(path)}


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, figures in FIGURES.items():
            terminalreporter.write_line(f"{name}: {json.dumps(figures)}")

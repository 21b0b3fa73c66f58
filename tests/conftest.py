from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.cli_helpers import engine, isolated, project  # noqa: F401  (fixtures of the CLI tests)
from tests.figures import FIGURES
from tests.harness import Harness, flow_project
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)

flow_project()  # puts the test project (flowlib) on sys.path before test modules import it


@pytest.fixture(params=["sqlite", "sqlite-background", "memory", "postgres"])
def harness(request: pytest.FixtureRequest, tmp_path) -> Iterator[Harness]:
    """Each scenario on SQLite, on SQLite committing in the background as the daemon does, in memory,
    and on PostgreSQL (an empty store; the engine asks for background commits, as the daemon does)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_clean_url")
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/zenaton.db"
    h = Harness(url, background_commits=request.param in ("sqlite-background", "postgres"))
    yield h
    h.close()


@pytest.fixture
def flow_log(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """The file the test project's tasks note each run in (flowlib.tasks.note)."""
    path = tmp_path / "flow.log"
    monkeypatch.setenv("FLOW_LOG", str(path))
    return path


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

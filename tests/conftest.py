from __future__ import annotations

from typing import Iterator

import pytest

from tests.cli_helpers import engine, isolated, project  # noqa: F401  (fixtures of the CLI tests)
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

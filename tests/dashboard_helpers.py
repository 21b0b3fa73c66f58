"""Shared pieces of the dashboard tests: its test project, an in-process engine, a signed-in client."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from starlette.testclient import TestClient

from tests.cli_helpers import Engineer, run_json
from zenaton_cli.dashboard.access import load_token
from zenaton_cli.dashboard.app import create_app
from zenaton_runtime.client.control import Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.project.config import load_config

DASHPROJ = Path(__file__).parent / "fixtures" / "dashproj"
MODULES = ("boot", "dashflows")
BASE = "http://127.0.0.1:8025"


def make_dash_project(tmp_path: Path, *, timezone: str = "UTC", concurrency: int = 2) -> Path:
    root = tmp_path / "dashproj"
    shutil.copytree(DASHPROJ, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "zenaton.toml").write_text(
        f'[project]\nname = "dash"\nenv = "dev"\ntimezone = "{timezone}"\n\n[daemon]\nconcurrency = {concurrency}\n'
    )
    return root


def forget_modules() -> None:
    for name in [n for n in sys.modules if n.partition(".")[0] in MODULES]:
        del sys.modules[name]


@pytest.fixture
def dash_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for variable in ("ZENATON_APP_ID", "ZENATON_API_TOKEN", "ZENATON_APP_ENV"):
        monkeypatch.delenv(variable, raising=False)
    forget_modules()
    path = list(sys.path)
    yield make_dash_project(tmp_path)
    forget_modules()
    sys.path[:] = path


@pytest.fixture
def dash_engine(dash_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engineer]:
    """What the daemon does, in-process; the commands and the dashboard see it running (its pid
    lock is held), and each wait of theirs for it to take an inbox item runs the engine."""
    engineer = Engineer(dash_root)
    # The dashboard's requests run the engine on a server thread, and a suspended run (a greenlet)
    # cannot resume on another thread than its own: every step rebuilds its runs by replay.
    engineer.engine = Engine(
        engineer.store, engineer.project, engineer.engine.runner, clock=engineer.clock, cache_size=0
    )
    config = load_config(dash_root)
    lock = PidLock(lock_path(config))
    lock.acquire(config.store_url)
    monkeypatch.setattr(Control, "idle", lambda self, seconds: engineer.run())
    yield engineer
    lock.release()
    engineer.close()


def app_for(root: Path) -> Any:
    config = load_config(root)
    return create_app(config, load_token(config.state_dir), cookie="zenaton_dashboard")


@pytest.fixture
def anonymous(dash_root: Path) -> Iterator[TestClient]:
    """A client without the token (it has none of the dashboard's cookies)."""
    with TestClient(app_for(dash_root), base_url=BASE, follow_redirects=False) as client:
        yield client


@pytest.fixture
def browser_client(dash_root: Path) -> Iterator[TestClient]:
    """A client signed in as a browser is: through the address with the token, then by cookie."""
    with TestClient(app_for(dash_root), base_url=BASE, follow_redirects=False) as client:
        token = load_token(load_config(dash_root).state_dir)
        entered = client.get(f"/?token={token}")
        assert entered.status_code == 303 and entered.headers["location"] == "/"
        yield client


def token_of(root: Path) -> str:
    return load_token(load_config(root).state_dir)


def csrf_of(root: Path) -> str:
    from zenaton_cli.dashboard.access import csrf_token

    return csrf_token(token_of(root))


def dispatch(root: Path, name: str, *args: str, custom_id: str | None = None) -> str:
    extra = ["--id", custom_id] if custom_id else []
    return run_json(root, "dispatch", name, *args, *extra)["id"]

"""Shared pieces of the command-line tests: a project from `zenaton init`, an in-process engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from zenaton_runtime.timing.clock import FakeClock
from zenaton_runtime.project.config import load_config
from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import open_store
from zenaton_runtime.pool.inline import InlineRunner
from zenaton_cli.main import cli

ZENATON = Path(sys.executable).parent / "zenaton"
ENV_VARS = ("ZENATON_APP_ID", "ZENATON_API_TOKEN", "ZENATON_APP_ENV", "ZENATON_STORE_URL")
TEMPLATE_MODULES = ("boot", "workflows", "tasks", "events", "dispatch_welcome")
ADA = '{"email": "ada@example.com", "slack_id": "U1"}'
BOB = '{"email": "bob@example.com", "slack_id": "U2"}'
SUMMARY_FIELDS = {"id", "kind", "name", "custom_id", "env", "status", "created_at", "updated_at"}
VIEW_FIELDS = SUMMARY_FIELDS | {"error", "properties", "steps"}
STEP_FIELDS = {"position", "kind", "name", "status", "attempts", "started_at", "finished_at", "result", "error", "properties"}


# -- helpers ---------------------------------------------------------------------------------

def _template_module(name: str) -> bool:
    return name.partition(".")[0] in TEMPLATE_MODULES


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ZENATON_* variables; the template's top-level modules (boot, workflows, ...) are
    imported fresh for each test's project and the previous ones restored afterwards."""
    for variable in ENV_VARS:
        monkeypatch.delenv(variable, raising=False)
    saved = {name: module for name, module in sys.modules.items() if _template_module(name)}
    for name in saved:
        del sys.modules[name]
    path = list(sys.path)
    yield
    for name in [name for name in sys.modules if _template_module(name)]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path[:] = path


def invoke(*args: Any, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output} {result.exception!r}"
    return result


@pytest.fixture
def project(tmp_path: Path, isolated: None) -> Path:
    root = tmp_path / "proj"
    invoke("init", root)
    return root


def run_json(root: Path, *args: Any) -> Any:
    return json.loads(invoke("--project", root, *args, "--json").stdout)


def dispatch(root: Path, *args: Any) -> str:
    return run_json(root, "dispatch", *args)["id"]


def zenaton(cwd: Path, *args: Any) -> subprocess.CompletedProcess[str]:
    """The installed executable, so main()'s error handling is what runs."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run([str(ZENATON), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def fails(cwd: Path, *args: Any, match: str) -> str:
    """Runs `zenaton ARGS`; checks exit 1 and one `error:` line containing ``match``."""
    result = zenaton(cwd, *args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


class Engineer:
    """An engine on the project's own SQLite file: what the daemon would do, in-process."""

    def __init__(self, root: Path) -> None:
        config = load_config(root)
        self.project = load_project(config.root, config.boot, config.module)
        self.clock = FakeClock(time.time())
        self.store = open_store(config.store_url, now=self.clock.now)
        runner = InlineRunner(self.project, runtime_factory=self._task_runtime)
        self.engine = Engine(self.store, self.project, runner, clock=self.clock)

    def _task_runtime(self, env: str) -> ClientRuntime:
        return ClientRuntime(Control(self.store, self.project.codec, env), env_from_client=False)

    def run(self, advance: float = 0) -> None:
        # The CLI stamps what it writes with the real time; never run behind it.
        self.clock.set(max(self.clock.now(), time.time()))
        self.engine.run_until_idle()
        if advance:
            self.clock.advance(advance)
            self.engine.run_until_idle()

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def engine(project: Path) -> Iterator[Engineer]:
    engineer = Engineer(project)
    yield engineer
    engineer.close()


@pytest.fixture
def daemon(project: Path, engine: Engineer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engineer]:
    """A daemon the commands see running (its pid lock is held) whose work ``engine`` does: while a
    command waits for it to take an inbox item, each wait between two looks runs the engine."""
    config = load_config(project)
    lock = PidLock(lock_path(config))
    lock.acquire(config.store_url)
    monkeypatch.setattr(Control, "idle", lambda self, seconds: engine.run())
    yield engine
    lock.release()

"""Drive the engine a step at a time: real store, fake clock, tasks run in-process."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zenaton_runtime.timing.clock import FakeClock
from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.project.loader import Project, load_project
from zenaton_runtime.models import Instance
from zenaton_runtime.store import Store, open_store
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.pool.inline import InlineRunner

FLOWPROJ = Path(__file__).parent / "fixtures" / "flowproj"
_PROJECT: Project | None = None


def flow_project() -> Project:
    """The test project, imported once per test process."""
    global _PROJECT
    if _PROJECT is None:
        _PROJECT = load_project(FLOWPROJ, "boot.py")
    return _PROJECT


class LaggingRunner(InlineRunner):
    """Runs attempts when submitted, as InlineRunner, but reports each outcome one poll later:
    results arrive while the engine is still committing a step, as with real workers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next: list[Outcome] = []

    def poll(self, timeout: float = 0) -> list[Outcome]:
        ready, self._next = self._next, super().poll()
        return ready

    def busy(self) -> int:
        return len(self._next) + len(self._finished)


class Harness:
    def __init__(self, store_url: str, *, env: str = "dev", cache_size: int = 1000, background_commits: bool = False) -> None:
        self.clock = FakeClock()
        self.store: Store = open_store(store_url, now=self.clock.now)
        self.project = flow_project()
        self.control = Control(self.store, self.project.codec, env)
        runner = LaggingRunner if background_commits else InlineRunner
        self.runner = runner(self.project, runtime_factory=self._task_runtime)
        self.engine = Engine(
            self.store, self.project, self.runner, clock=self.clock, cache_size=cache_size,
            background_commits=background_commits,
        )

    def _task_runtime(self, env: str) -> ClientRuntime:
        return ClientRuntime(Control(self.store, self.project.codec, env), env_from_client=False)

    @property
    def runtime(self) -> ClientRuntime:
        """The runtime a plain script gets (dispatch, where_id ...)."""
        return ClientRuntime(self.control, env_from_client=False)

    def dispatch(self, job: Any) -> str:
        return self.control.dispatch(job).id

    def finished_outcomes(self) -> list[Outcome]:
        """Every attempt's outcome the runner holds, taken before the engine sees them."""
        return self.runner.poll() + self.runner.poll()  # a LaggingRunner hands them out one poll later

    def run(self) -> None:
        self.engine.run_until_idle()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run()

    def instance(self, instance_id: str) -> Instance:
        instance = self.store.get_instance(instance_id)
        assert instance is not None
        return instance

    def status(self, instance_id: str) -> str:
        return self.instance(instance_id).status.value

    def result(self, instance_id: str) -> Any:
        last = self.store.journal(instance_id)[-1]
        assert last.type.value == "completed", f"last entry is {last.type.value}"
        return self.project.codec.decode(json.dumps(json.loads(last.data)["result"]))

    def error(self, instance_id: str) -> dict[str, Any] | None:
        text = self.instance(instance_id).error
        return json.loads(text) if text else None

    def properties(self, instance_id: str) -> dict[str, Any]:
        return self.control.properties(self.instance(instance_id))

    def kinds(self, instance_id: str) -> list[str]:
        """The journal as "type[:position][:name]" strings, for comparing whole journals."""
        out = []
        for entry in self.store.journal(instance_id):
            text = entry.type.value
            if entry.position is not None:
                text += f":{entry.position}"
            if entry.name and entry.type.value not in ("started",):
                text += f":{entry.name}"
            out.append(text)
        return out

    def close(self) -> None:
        self.store.close()

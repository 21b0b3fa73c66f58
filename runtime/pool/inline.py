"""The in-process runner: attempts run synchronously in the caller's process (tests, helpers).

A ``Runner`` (``zenaton_runtime.pool.runner``), as ``WorkerPool`` is, without processes: no
timeouts are enforced, and output capture swaps the process-wide ``sys.stdout``/``sys.stderr``.
Use the pool for real work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zenaton_runtime.pool.attempts import Attempt, Handler, Outcome, RuntimeFactory, run_attempt

__all__ = ["InlineRunner"]


class InlineRunner:
    """Runs each attempt when it is submitted; ``poll`` hands out the outcomes. ``handlers``:
    task class names whose attempts run a handler instead of ``handle()`` (looked up at each
    attempt, so the mapping may change between two; the testing kit's mocks)."""

    def __init__(
        self,
        project: Any,
        runtime_factory: RuntimeFactory | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.project = project
        self.runtime_factory = runtime_factory
        self.handlers: Mapping[str, Handler] = {} if handlers is None else handlers
        self._finished: list[Outcome] = []
        self._closed = False

    def submit(self, attempt: Attempt) -> None:
        if self._closed:
            raise RuntimeError("the runner is closed")
        handler = self.handlers.get(attempt.name)
        self._finished.append(run_attempt(self.project, attempt, make_runtime=self.runtime_factory, handler=handler))

    def submit_many(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            self.submit(attempt)

    def poll(self, timeout: float = 0) -> list[Outcome]:
        finished, self._finished = self._finished, []
        return finished

    def free_slots(self) -> int:
        return 0 if self._closed else 1 << 30

    def busy(self) -> int:
        return 0

    def running(self) -> list[Attempt]:
        return []

    def shutdown(self, grace: float = 0) -> tuple[list[Outcome], list[Attempt]]:
        self._closed = True
        return self.poll(), []

    def close(self) -> None:
        self._closed = True


if TYPE_CHECKING:  # mypy checks that it is a Runner, signatures included
    from zenaton_runtime.pool.runner import Runner

    _IS_A_RUNNER: type[Runner] = InlineRunner

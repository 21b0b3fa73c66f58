"""The runner protocol: what the engine (and the daemon) ask of whatever runs task attempts.

Two implementations: ``WorkerPool`` (warm worker processes, ``zenaton_runtime.pool.worker_pool``)
for the daemon, and ``InlineRunner`` (this process, ``zenaton_runtime.pool.inline``) for tests
and in-process helpers. Neither is imported here: the protocol is structural.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from zenaton_runtime.pool.attempts import Attempt, Outcome

__all__ = ["Runner"]


@runtime_checkable
class Runner(Protocol):
    """Runs attempts handed to it and reports their outcomes; never raises for a task's sake."""

    def submit_many(self, attempts: list[Attempt]) -> None:
        """Accept ``attempts`` (at most ``free_slots()`` of them): each runs once, its outcome
        reported by a later ``poll``."""
        ...

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes finished since the last call, waiting at most ``timeout`` seconds for one."""
        ...

    def busy(self) -> int:
        """Attempts accepted and not yet reported."""
        ...

    def free_slots(self) -> int:
        """How many more attempts ``submit_many`` may be given now (0 once shut down)."""
        ...

    def shutdown(self, grace: float) -> tuple[list[Outcome], list[Attempt]]:
        """Stop taking work; give running attempts ``grace`` seconds. Returns (outcomes finished
        meanwhile, attempts that did not finish)."""
        ...

    def close(self) -> None:
        """Release everything (idempotent)."""
        ...

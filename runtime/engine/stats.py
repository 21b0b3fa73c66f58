"""The engine's counters since it started, for the daemon's record in the store (``DaemonRecord.stats``).

Counted where the engine already is: plain integer increments on the engine's thread, no lock
(the daemon reads them on the same thread, between two steps, once it had the engine land its
commit in flight). Latency and steps are counted when a commit lands; task attempts as their
outcomes go into a step, and taken back if its commit fails (the step is decided again).
"""

from __future__ import annotations

import json
from bisect import bisect_left

# Upper bounds (seconds) of the commit latency histogram's buckets; a last one holds the rest (+Inf).
COMMIT_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EngineStats:
    """Steps, commits, task attempts by outcome and the commit latency histogram (plain counts
    per bucket here; ``to_json`` makes them cumulative)."""

    __slots__ = (
        "commit_buckets",
        "commit_seconds",
        "commits",
        "completed",
        "failed",
        "instances_lost",
        "retried",
        "steps",
    )

    def __init__(self) -> None:
        self.steps = 0  # instance steps committed: one instance's inputs of one engine step
        self.commits = 0  # the engine's write transactions (each holds one engine step)
        self.completed = 0  # task attempts that succeeded
        self.failed = 0  # task attempts that failed for good (the instance stops with the error)
        self.retried = 0  # task attempts that failed and were re-queued by the task's retry delay
        self.instances_lost = 0  # instances another daemon took over while this one held them
        self.commit_seconds = 0.0
        self.commit_buckets = [0] * (len(COMMIT_BOUNDS) + 1)  # commits by latency bucket, not cumulative

    def committed(self, seconds: float) -> None:
        """A commit landed ``seconds`` after ``commit_step`` was called."""
        self.commits += 1
        self.commit_seconds += seconds
        self.commit_buckets[bisect_left(COMMIT_BOUNDS, seconds)] += 1

    def count(self, ok: bool, retry_delay: float | None, by: int = 1) -> None:
        """An attempt's outcome: completed, retried (as DecisionApplier.task_failed decides it) or failed."""
        if ok:
            self.completed += by
        elif retry_delay:
            self.retried += by
        else:
            self.failed += by

    def uncount(self, ok: bool, retry_delay: float | None) -> None:
        """Take back an attempt counted in a step whose commit failed (it is counted again)."""
        self.count(ok, retry_delay, -1)

    def to_json(self) -> str:
        """The counters as ``DaemonRecord.stats`` holds them (see zenaton_runtime.models)."""
        cumulative, total = [], 0
        for count in self.commit_buckets[: len(COMMIT_BOUNDS)]:
            total += count
            cumulative.append(total)
        return json.dumps(
            {
                "steps": self.steps,
                "commits": self.commits,
                "instances_lost": self.instances_lost,
                "task_attempts": {"completed": self.completed, "failed": self.failed, "retried": self.retried},
                "commit_seconds": {
                    "le": list(COMMIT_BOUNDS),
                    "buckets": cumulative,
                    "count": self.commits,
                    "sum": round(self.commit_seconds, 6),
                },
            },
            separators=(",", ":"),
        )

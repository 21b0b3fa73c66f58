"""The in-process scenarios (1-3): an Engine with a real worker pool over a fresh SQLite store,
and the raw-SQLite baseline every figure is compared to."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from zenaton_runtime.client.control import Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.models import Entry, InstanceStatus
from zenaton_runtime.pool.worker_pool import WorkerPool
from zenaton_runtime.store import open_store

PROJECT = Path(__file__).parent / "project"


def sqlite_baseline(directory: Path, rows: int = 2000, synchronous: str = "FULL") -> float:
    """Single-row commits per second: the one-commit-per-step limit of this disk."""
    path = directory / f"baseline-{synchronous}-{time.monotonic_ns()}.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    start = time.perf_counter()
    for i in range(rows):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t (payload) VALUES (?)", (f"row {i}",))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return rows / elapsed


class Bench:
    """An engine with a real worker pool over a fresh SQLite store (or the one at ``url``)."""

    def __init__(self, directory: Path, durability: str, concurrency: int, url: str | None = None) -> None:
        self.url = url or f"sqlite:///{directory}/bench-{time.monotonic_ns()}.db"
        self.store = open_store(self.url, durability=durability)
        self.project = load_project(PROJECT, "boot.py")
        self.control = Control(self.store, self.project.codec, "bench")
        self.pool = WorkerPool(self.project, root=PROJECT, boot="boot.py", store_url=self.url, concurrency=concurrency)
        self.engine = Engine(  # as the daemon's
            self.store, self.project, self.pool, cache_size=10_000, background_commits=True
        )
        self.pool.warm_up()  # as the daemon does when it starts: the clock measures steps, not process starts
        if not self.pool.wait_ready(60):
            raise RuntimeError("the task workers did not load the project within 60 s")

    def run_until_done(self, count: int, timeout: float = 600.0) -> float:
        """Drive the engine until ``count`` instances completed; returns the seconds from the
        start to the landing of the commit that completed the last one (no commit follows it).
        The store is asked how many completed at most every 5 ms of idle time: measuring must not
        slow down the run. Reads do not see a commit still in flight."""
        start, started_at = time.perf_counter(), time.time()
        busy, checked = True, start
        while (now := time.perf_counter()) - start < timeout:
            busy = self.engine.step(0.0 if busy else 0.002) > 0
            if not busy and now - checked >= 0.005:
                checked = now
                if self.store.counts()["completed"] >= count:
                    return self.store.committed_at - started_at  # type: ignore[attr-defined]
        raise RuntimeError(f"not done after {timeout} s: {self.store.counts()}")

    def close(self) -> None:
        self.pool.close()
        self.store.close()


def workflows(directory: Path, durability: str, concurrency: int, count: int, steps: int) -> dict[str, Any]:
    from benchflows import Steps  # type: ignore[import-not-found]  # benchmarks/project, on sys.path

    bench = Bench(directory, durability, concurrency)
    try:
        for _ in range(count):
            bench.control.dispatch(Steps(steps))
        seconds = bench.run_until_done(count)
    finally:
        bench.close()
    return {
        "workflows": count,
        "steps_each": steps,
        "seconds": round(seconds, 3),
        "workflows_per_s": round(count / seconds, 1),
        "steps_per_s": round(count * steps / seconds, 1),
    }


def long_workflow(
    directory: Path, durability: str, concurrency: int, steps: int, url: str | None = None
) -> dict[str, Any]:
    from benchflows import Steps  # type: ignore[import-not-found]  # benchmarks/project, on sys.path

    bench = Bench(directory, durability, concurrency, url)
    try:
        instance = bench.control.dispatch(Steps(steps))
        seconds = bench.run_until_done(1)
        done = [e.created_at for e in bench.store.journal(instance.id) if e.type is Entry.TASK_COMPLETED]
        finished = bench.store.get_instance(instance.id)
        assert finished is not None and finished.status is InstanceStatus.COMPLETED
    finally:
        bench.close()
    window = min(100, len(done) // 2)
    first = (done[window] - done[0]) / window * 1000
    last = (done[-1] - done[-1 - window]) / window * 1000
    return {
        "id": instance.id,
        "steps": steps,
        "seconds": round(seconds, 3),
        "steps_per_s": round(steps / seconds, 1),
        "ms_per_step_first": round(first, 3),
        "ms_per_step_last": round(last, 3),
        "last_over_first": round(last / first, 3) if first else None,
    }

"""Throughput and per-step latency of the engine on a real SQLite store.

    python -m benchmarks.run [--quick] [--durability full|fast] [--concurrency N] [--json FILE]

Each run first measures a raw-SQLite baseline on the same disk (one row per
commit, WAL, synchronous=FULL), so the figures can be read as ratios to it.
Numbers, not assertions: nothing here passes or fails on speed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime.control import Control
from runtime.engine import Engine
from runtime.loader import load_project
from runtime.models import Entry, InstanceStatus
from runtime.pool import WorkerPool
from runtime.store import open_store

PROJECT = Path(__file__).parent / "project"


def sqlite_baseline(directory: Path, rows: int = 2000, synchronous: str = "FULL") -> float:
    """Single-row commits per second: the one-commit-per-step limit of this disk."""
    path = directory / f"baseline-{synchronous}.db"
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
    """An engine with a real worker pool over a fresh SQLite store."""

    def __init__(self, directory: Path, durability: str, concurrency: int) -> None:
        self.url = f"sqlite:///{directory}/bench-{time.monotonic_ns()}.db"
        self.store = open_store(self.url, durability=durability)
        self.project = load_project(PROJECT, "boot.py")
        self.control = Control(self.store, self.project.codec, "bench")
        self.pool = WorkerPool(self.project, root=PROJECT, boot="boot.py", store_url=self.url, concurrency=concurrency)
        self.engine = Engine(self.store, self.project, self.pool, cache_size=10_000)

    def run_until_done(self, count: int, timeout: float = 600.0) -> float:
        """Drive the engine until ``count`` instances completed; returns the seconds it took."""
        start = time.perf_counter()
        busy = True
        while time.perf_counter() - start < timeout:
            busy = self.engine.step(0.0 if busy else 0.002) > 0
            if not busy and self.store.counts()["completed"] >= count:
                return time.perf_counter() - start
        raise RuntimeError(f"not done after {timeout} s: {self.store.counts()}")

    def close(self) -> None:
        self.pool.close()
        self.store.close()


def workflows(directory: Path, durability: str, concurrency: int, count: int, steps: int) -> dict[str, Any]:
    from benchflows import Steps

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


def long_workflow(directory: Path, durability: str, concurrency: int, steps: int) -> dict[str, Any]:
    from benchflows import Steps

    bench = Bench(directory, durability, concurrency)
    try:
        instance = bench.control.dispatch(Steps(steps))
        seconds = bench.run_until_done(1)
        done = [e.created_at for e in bench.store.journal(instance.id) if e.type is Entry.TASK_COMPLETED]
        assert bench.store.get_instance(instance.id).status is InstanceStatus.COMPLETED
    finally:
        bench.close()
    window = min(100, len(done) // 2)
    first = (done[window] - done[0]) / window * 1000
    last = (done[-1] - done[-1 - window]) / window * 1000
    return {
        "steps": steps,
        "seconds": round(seconds, 3),
        "steps_per_s": round(steps / seconds, 1),
        "ms_per_step_first": round(first, 3),
        "ms_per_step_last": round(last, 3),
        "last_over_first": round(last / first, 3) if first else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (a smoke run).")
    parser.add_argument("--durability", choices=["full", "fast"], default="full")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this file.")
    args = parser.parse_args(argv)
    sizes = dict(one=20, ten=10, long=60) if args.quick else dict(one=500, ten=200, long=2000)
    sys.path.insert(0, str(PROJECT))
    with tempfile.TemporaryDirectory(prefix="zenaton-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        directory = Path(tmp)
        baseline = sqlite_baseline(directory, 200 if args.quick else 2000)
        results: dict[str, Any] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "durability": args.durability,
            "concurrency": args.concurrency,
            "baseline_commits_per_s": round(baseline, 1),
            "one_step": workflows(directory, args.durability, args.concurrency, sizes["one"], 1),
            "ten_step": workflows(directory, args.durability, args.concurrency, sizes["ten"], 10),
            "long": long_workflow(directory, args.durability, args.concurrency, sizes["long"]),
        }
    print_table(results)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def print_table(r: dict[str, Any]) -> None:
    base = r["baseline_commits_per_s"]
    rows = [
        ("raw SQLite, 1 row per commit (FULL)", f"{base:,.0f} commits/s", "1.00x"),
        (f"{r['one_step']['workflows']} one-step workflows", f"{r['one_step']['workflows_per_s']:,.0f} workflows/s",
         f"{r['one_step']['workflows_per_s'] / base:.2f}x"),
        (f"{r['ten_step']['workflows']} ten-step workflows", f"{r['ten_step']['steps_per_s']:,.0f} steps/s",
         f"{r['ten_step']['steps_per_s'] / base:.2f}x"),
        (f"one {r['long']['steps']}-step workflow", f"{r['long']['steps_per_s']:,.0f} steps/s",
         f"{r['long']['steps_per_s'] / base:.2f}x"),
        ("  ms/step, first 100 -> last 100",
         f"{r['long']['ms_per_step_first']:.3f} -> {r['long']['ms_per_step_last']:.3f}",
         f"last/first {r['long']['last_over_first']}"),
    ]
    print(f"machine: {r['machine']}; durability {r['durability']}; concurrency {r['concurrency']}")
    for name, figure, ratio in rows:
        print(f"{name:<40} {figure:>28} {ratio:>18}")


if __name__ == "__main__":
    raise SystemExit(main())

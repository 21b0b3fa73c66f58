"""Retention figures: the prune rate on a SQLite store of finished instances, the store's size
before and after pruning them and vacuuming, and the step latency of a real daemon running a
steady workload with and without its background retention pruning them meanwhile.

    .venv/bin/python -m benchmarks.prune                 # 100,000 instances (about five minutes)
    .venv/bin/python -m benchmarks.prune --count 5000 --seconds 10 --json out.json

Step latency, as an instance sees it: for each task of the workload, from the moment its attempt
finished in the worker (``finished_at`` on its ``task_completed`` entry) to the moment the step
that journaled it wrote the entry (the entry's ``created_at``): collecting the outcome, deciding,
and the commit, plus any time the daemon's loop spent elsewhere (a prune batch)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zenaton_runtime.models import Entry, Instance, InstanceStatus, Kind, TaskRecord, TaskStatus
from zenaton_runtime.store import Batch, NewEntry
from zenaton_runtime.store.sqlite import SQLiteStore
from zenaton_runtime.store.sqlite_vacuum import size_of, vacuum

from .harness import Daemon, make_project, project_env, store_path

DAY = 86400.0
BATCH = 500  # what `zenaton prune` and the daemon remove in one transaction


def build(path: Path, count: int, env: str = "bench") -> None:
    """``count`` completed Steps(2)-like instances: 6 journal entries and 2 done tasks each,
    last updated 40 days ago."""
    store = SQLiteStore(path, durability="fast")
    now = time.time()
    try:
        for start in range(0, count, 1000):
            ids = [os.urandom(16).hex() for _ in range(min(1000, count - start))]
            records = []
            for id in ids:
                instance = Instance(
                    id=id, kind=Kind.WORKFLOW, name="Steps", version=None, custom_id=None, env=env,
                    status=InstanceStatus.RUNNING, data='{"steps": 2, "done": 0}', properties=None, error=None,
                    parent_id=None, parent_position=None, created_at=now, updated_at=now,
                )
                records.append((instance, NewEntry(id, Entry.STARTED, data='{"version": null}'), None))
            store.create_instances(records)
            batch = Batch()
            for id in ids:
                for position in (1, 2):
                    task = TaskRecord(
                        os.urandom(16).hex(), id, position, "Noop", f'{{"i": {position}}}', TaskStatus.DONE, 0, 1,
                        now, now,
                    )
                    batch.add_task(task)
                    batch.append(NewEntry(id, Entry.TASK_SCHEDULED, position, "Noop", data=f'{{"task": {{"i": {position}}}}}'))
                    batch.append(NewEntry(id, Entry.TASK_COMPLETED, position, "Noop", data=str(position),
                                          properties=f'{{"done": {position}}}'))
                batch.append(NewEntry(id, Entry.COMPLETED, 3, data="2"))
                batch.update_instance(id, status=InstanceStatus.COMPLETED, properties='{"steps": 2, "done": 2}')
                batch.consume_inbox(id, [])
            store.commit_step(batch, now, 0).wait()
        store._conn.execute("UPDATE instances SET updated_at = updated_at - ?", (40 * DAY,))
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def prune_rate(path: Path, count: int) -> dict[str, Any]:
    """Prune every instance in batches of BATCH, as `zenaton prune --older-than 30d` does; then VACUUM."""
    before = size_of(path)
    store = SQLiteStore(path)
    try:
        start = time.perf_counter()
        gone = 0
        while found := store.prunable([InstanceStatus.COMPLETED], time.time() - 30 * DAY, BATCH):
            gone += store.prune(found)
        seconds = time.perf_counter() - start
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    pruned_size = size_of(path)
    vacuumed = vacuum(path)
    return {
        "instances": gone,
        "seconds": round(seconds, 2),
        "instances_per_s": round(gone / seconds, 1),
        "bytes_before": before,
        "bytes_after_prune": pruned_size,
        "bytes_after_vacuum": vacuumed.after,
    }


DRIVER = """
import sys, time

from benchflows import Steps
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
start = time.monotonic(); n = 0
while (elapsed := time.monotonic() - start) < seconds:
    if n < elapsed * rate:
        Steps(3).dispatch(); n += 1
    else:
        time.sleep(0.002)
print(n)
"""


def latency(directory: Path, count: int, seconds: float, rate: float) -> dict[str, Any]:
    """A real daemon with [retention] completed = "30d" and a steady workload of Steps(3) at
    ``rate`` a second for ``seconds``; the store preloaded with ``count`` completed instances
    40 days old (0: nothing to prune)."""
    root = make_project(directory, f"latency-{count}", "full", 4)
    with (root / "zenaton.toml").open("a") as toml:
        toml.write('\n[retention]\ncompleted = "30d"\n')
    if count:
        store_path(root).parent.mkdir(mode=0o700, exist_ok=True)
        build(store_path(root), count)
    daemon = Daemon(root)
    try:
        daemon.wait_started()
        started = time.time()
        driver = subprocess.run(
            [sys.executable, "-c", DRIVER, str(rate), str(seconds)], cwd=root, env=project_env(),
            capture_output=True, text=True, timeout=seconds + 120, check=True,
        )
        dispatched = int(driver.stdout.split()[-1])
        deadline = time.monotonic() + 120
        while _completed_since(root, started) < dispatched and time.monotonic() < deadline:
            time.sleep(0.1)
        log = daemon.log()
    finally:
        daemon.stop()
    gaps = _gaps(root, started)
    left = _scalar(root, "SELECT count(*) FROM instances WHERE created_at < ?", started)
    pruned = sum(int(line.split("pruned ")[1].split()[0]) for line in log.splitlines() if "retention: pruned" in line)
    return {
        "preloaded": count,
        "dispatched": dispatched,
        "tasks_measured": len(gaps),
        "step_latency_ms_p50": round(_quantile(gaps, 0.50) * 1000, 2),
        "step_latency_ms_p99": round(_quantile(gaps, 0.99) * 1000, 2),
        "step_latency_ms_max": round(max(gaps, default=0.0) * 1000, 2),
        "pruned_meanwhile": pruned,
        "preloaded_left": left,
    }


def _scalar(root: Path, sql: str, *params: Any) -> Any:
    with sqlite3.connect(f"file:{store_path(root)}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _completed_since(root: Path, since: float) -> int:
    return int(_scalar(root, "SELECT count(*) FROM instances WHERE status = 'completed' AND created_at >= ?", since))


def _gaps(root: Path, since: float) -> list[float]:
    with sqlite3.connect(f"file:{store_path(root)}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT j.created_at, j.data FROM journal j JOIN instances i ON i.id = j.instance_id"
            " WHERE j.type = 'task_completed' AND i.created_at >= ?",
            (since,),
        ).fetchall()
    gaps = []
    for created_at, data in rows:
        finished = json.loads(data).get("finished_at") if data and data.startswith("{") else None
        if isinstance(finished, (int, float)):
            gaps.append(created_at - finished)
    return sorted(gaps)


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="finished instances in the store")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady workload")
    parser.add_argument("--rate", type=float, default=20.0, help="workflows (3 tasks each) dispatched a second")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="zenaton-prune-", dir=os.environ.get("BENCH_DIR")))
    try:
        path = directory / "rate.db"
        start = time.perf_counter()
        build(path, args.count)
        built = round(time.perf_counter() - start, 1)
        figures: dict[str, Any] = {"built_in_s": built, "prune": prune_rate(path, args.count)}
        figures["latency_without_prune"] = latency(directory, 0, args.seconds, args.rate)
        figures["latency_with_prune"] = latency(directory, args.count, args.seconds, args.rate)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

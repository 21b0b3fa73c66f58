"""The reads a dashboard makes, on a SQLite store of many instances: a page of the listing
(filtered, and the next page by keyset), and the counts by kind, name and status.

    .venv/bin/python -m benchmarks.store_reads [--instances 100000] [--repeats 20] [--plans]

Builds the store once in ``BENCH_DIR`` (default: a temporary directory), then prints the median
time of each read in milliseconds (and, with ``--plans``, SQLite's query plans).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zenaton_runtime.models import Entry, Instance, InstanceStatus, Kind
from zenaton_runtime.store.ops import NewEntry
from zenaton_runtime.store.sqlite import SQLiteStore

STATUSES = [  # a store that has run a while: mostly finished instances
    (InstanceStatus.COMPLETED, 0.90),
    (InstanceStatus.RUNNING, 0.08),
    (InstanceStatus.PAUSED, 0.015),
    (InstanceStatus.KILLED, 0.004),
    (InstanceStatus.FAILED, 0.001),
]

# What a dispatched job and its properties look like once encoded: a few hundred bytes each.
DATA = json.dumps({"o": {"email": "ada@example.com", "slack_id": "U1", "plan": "pro", "notes": "x" * 150}})
PROPERTIES = json.dumps({"email_receipt": {"to": "ada@example.com", "status": "sent"}, "steps": list(range(20))})


def build(path: Path, count: int, seed: int = 7) -> list[str]:
    """``count`` instances of 12 workflow and task names, in batches of 500 with one created_at
    each (as a bulk dispatch makes them); returns their ids, oldest first."""
    rng = random.Random(seed)
    store = SQLiteStore(path, durability="fast")
    ids: list[str] = []
    try:
        statuses, weights = zip(*STATUSES)
        for start in range(0, count, 500):
            created = 1_700_000_000.0 + start
            records: list[Any] = []
            for _ in range(min(500, count - start)):
                kind = Kind.TASK if rng.random() < 0.2 else Kind.WORKFLOW
                status = rng.choices(statuses, weights)[0]
                if kind is Kind.WORKFLOW and status is InstanceStatus.FAILED:
                    status = InstanceStatus.PAUSED
                instance_id = f"{rng.getrandbits(128):032x}"
                name = f"{'Task' if kind is Kind.TASK else 'Flow'}{rng.randrange(6)}"
                env = "prod" if rng.random() < 0.1 else "dev"
                instance = Instance(
                    instance_id, kind, name, None, None, env, status, DATA, PROPERTIES, None, None, None, created, created
                )
                records.append((instance, NewEntry(instance_id, Entry.STARTED, data="{}"), None))
                ids.append(instance_id)
            store.create_instances(records)
    finally:
        store.close()
    return ids


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def measure(path: Path, ids: list[str], repeats: int, plans: bool) -> dict[str, float]:
    store = SQLiteStore(path)
    middle = ids[len(ids) // 2]
    reads: dict[str, Callable[[], object]] = {
        "list limit=50": lambda: store.list_instances(limit=50),
        "list status=running limit=50": lambda: store.list_instances(status=InstanceStatus.RUNNING, limit=50),
        "list status=paused limit=50": lambda: store.list_instances(status=InstanceStatus.PAUSED, limit=50),
        "list status=failed limit=50": lambda: store.list_instances(status=InstanceStatus.FAILED, limit=50),
        "list env=dev status=paused limit=50": lambda: store.list_instances(
            env="dev", status=InstanceStatus.PAUSED, limit=50
        ),
        "list before=<middle> limit=50": lambda: store.list_instances(before=middle, limit=50),
        "list status=running before=<middle> limit=50": lambda: store.list_instances(
            status=InstanceStatus.RUNNING, before=middle, limit=50
        ),
        "list status=paused before=<middle> limit=50": lambda: store.list_instances(
            status=InstanceStatus.PAUSED, before=middle, limit=50
        ),
        "instance_counts()": lambda: store.instance_counts(),
        "instance_counts('dev')": lambda: store.instance_counts("dev"),
        "counts()": store.counts,
        "queue_depth(now)": lambda: store.queue_depth(time.time()),
    }
    try:
        if plans:
            plain = store._conn  # noqa: SLF001  (a measuring script: the plans of the real queries)
            for sql, params in [
                ("SELECT id FROM instances WHERE status = ? ORDER BY created_at DESC, ord DESC LIMIT 50", ("paused",)),
                (
                    "SELECT id FROM instances WHERE (created_at, ord) < (SELECT created_at, ord FROM instances"
                    " WHERE id = ?) ORDER BY created_at DESC, ord DESC LIMIT 50",
                    (middle,),
                ),
                ("SELECT kind, name, status, count(*) FROM instances GROUP BY kind, name, status", ()),
            ]:
                plan = [row[3] for row in plain.execute("EXPLAIN QUERY PLAN " + sql, params)]
                print(f"{sql}\n  -> {plan}")
        return {name: median_ms(fn, repeats) for name, fn in reads.items()}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--plans", action="store_true", help="print SQLite's query plans too")
    args = parser.parse_args()
    directory = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="zenaton-reads-"))
    path = directory / f"reads-{args.instances}.db"
    if path.exists():
        path.unlink()
    ids = build(path, args.instances)
    print(json.dumps(measure(path, ids, args.repeats, args.plans), indent=2))


if __name__ == "__main__":
    main()

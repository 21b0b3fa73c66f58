"""How fast an idle daemon on PostgreSQL notices a dispatch: from the moment a client's dispatch
returned to the moment the first task of the new instance started in a worker.

    .venv/bin/python -m benchmarks.wakeup [--samples 200] [--url postgresql://user@host/db]

A real `zenaton start --no-reload` on the database given by ``--url`` (empty), or on a new one of
a throwaway server (``initdb``, as the tests start one). One client process dispatches
``Steps(1)`` (one no-op task) ``--samples`` times, one at a time: it notes the wall time
(``time.time()``) when ``Client().dispatch_many`` returned, waits until the instance completed,
then lets the daemon idle for a random 50 to 150 ms, so that each dispatch lands at a random
moment of the daemon's idle wait. The task's start is the ``started_at`` its worker journaled
on the ``task_completed`` entry (the same machine, the same clock). Prints p50, p90, p99 and the
maximum in milliseconds, and the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .harness import PROJECT, Daemon, project_env

CLIENT = """
import json, random, sys, time
import psycopg
import boot  # noqa: F401
from benchflows import Steps
from zenaton.client import Client

url, count = sys.argv[1], int(sys.argv[2])
client = Client()
marks = []
with psycopg.connect(url, autocommit=True) as conn:
    for _ in range(count):
        time.sleep(random.uniform(0.05, 0.15))  # the daemon idles: the dispatch lands anywhere in its wait
        (instance_id,) = client.dispatch_many([Steps(1)])
        returned = time.time()
        marks.append((instance_id, returned))
        deadline = time.monotonic() + 30
        while conn.execute(
            "SELECT status FROM zenaton.instances WHERE id = %s", (instance_id,)
        ).fetchone()[0] != "completed":
            if time.monotonic() > deadline:
                raise SystemExit(f"{instance_id} did not complete in 30 s")
            time.sleep(0.002)
print(json.dumps(marks))
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(url: str, samples: int) -> dict[str, Any]:
    import psycopg

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "wakeup"
        shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
        (root / "zenaton.toml").write_text(
            '[project]\nname = "bench-wakeup"\nenv = "bench"\nboot = "boot.py"\n\n'
            f'[store]\nurl = "{url}"\n\n[daemon]\nconcurrency = 2\nreload = false\n'
        )
        daemon = Daemon(root)
        try:
            daemon.wait_started()
            time.sleep(1.0)  # the workers are warm
            env = project_env()
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
            result = subprocess.run(
                [sys.executable, "-c", CLIENT, url, str(samples)],
                cwd=root, env=env, capture_output=True, text=True, timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(f"the client failed:\n{result.stderr[-3000:]}")
            marks = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            daemon.stop()
    latencies = []
    with psycopg.connect(url, autocommit=True) as conn:
        for instance_id, returned in marks:
            (data,) = conn.execute(
                "SELECT data FROM zenaton.journal WHERE instance_id = %s AND type = 'task_completed'", (instance_id,)
            ).fetchone()
            latencies.append((json.loads(data)["started_at"] - returned) * 1000)
    return {
        "samples": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--url", default=None, help="an empty PostgreSQL database (default: a throwaway server's)")
    args = parser.parse_args()
    if args.url:
        report = measure(args.url, args.samples)
    else:
        import psycopg

        from tests.postgres_server import Server

        server = Server()
        try:
            with psycopg.connect(f"{server.url}/postgres", autocommit=True) as admin:
                admin.execute("CREATE DATABASE wakeup")
            report = measure(f"{server.url}/wakeup", args.samples)
        finally:
            server.stop()
    print(
        f"dispatch returned -> first task started, idle daemon, {report['samples']} samples: "
        f"p50 {report['p50_ms']} ms, p90 {report['p90_ms']} ms, p99 {report['p99_ms']} ms, max {report['max_ms']} ms"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""The daemon end to end, as a user runs it: `zenaton start` with the default settings (full
durability, reload on, 8 workers) in a copy of benchmarks/project, the work dispatched one
instance at a time by a plain client script once the daemon logged its workers ready (none is
still loading the project as the clock runs), the clock read from what the store recorded.

    python -m benchmarks.daemon_e2e [--quick] [--rounds N] [--json FILE]

Figures, each beside the raw SQLite FULL commit rate measured on the same disk in the same round
(each figure is the median of --rounds rounds, 3, and each ratio the median of the rounds' ratios:
a disk's fsync rate can double or halve from one minute to the next; every round is in the JSON):
- one-step: N one-step workflows, first dispatch to last completion (workflows/s);
- ten-step: N ten-step workflows, the same (steps/s);
- long: one 2,000-step workflow, first task start to last task end (steps/s, ms a step for the
  first and the last 100);
- dispatch: single dispatch() calls from one script (dispatches/s);
- latency on an idle daemon: a dispatch returning -> its first task starting, and a task ending ->
  the next one starting (p50 and p99).
Times come from the journal: an attempt's started_at/finished_at (the worker's clock), a completed
entry's created_at (the commit). Nothing here asserts: these are figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .engine_scenarios import sqlite_baseline
from .harness import PROJECT, ZENATON, median_run, print_results, project_env

FULL = {"one": 500, "ten": 200, "long": 2000, "singles": 5000, "latency": 300}
QUICK = {"one": 50, "ten": 20, "long": 200, "singles": 300, "latency": 30}
CLIENT = """
import json, sys, time
import boot  # noqa: F401
from benchflows import Steps
from zenaton._runtime import get_runtime
api = get_runtime().control_api  # the store is opened before the clock starts
mode, count, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marks = []
start = time.time()
for _ in range(count):
    instance = api.dispatch(Steps(steps))
    marks.append((instance.id, time.time()))
    if mode == "paced":  # an idle daemon between two: wait until this one's first task has run
        while not api.store.journal(instance.id, after_seq=2):
            time.sleep(0.002)
        time.sleep(0.02)
end = time.time()
print(json.dumps({"start": start, "end": end, "marks": marks}))
"""


def project(directory: Path, name: str) -> Path:
    root = directory / name
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "zenaton.toml").write_text(f'[project]\nname = "e2e-{name}"\nenv = "bench"\nboot = "boot.py"\n')
    (root / "client.py").write_text(CLIENT)
    return root


LOG_OUTSIDE = False  # --log-outside: the daemon's output in a file beside the project, not in it


class Running:
    """`zenaton start`, as a user types it, in ``root``. Its output goes to ``daemon.log`` in the
    project's folder, which the hot reload watches (before it watched only closed writes, every
    line woke the watcher's threads, which took turns with the engine's). With ``LOG_OUTSIDE``
    the file is beside the project, as a terminal is."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = (root.parent / f"{root.name}-daemon.log") if LOG_OUTSIDE else (root / "daemon.log")
        self.log = open(self.path, "wb")  # noqa: SIM115  (closed by stop())
        self.process = subprocess.Popen(
            [ZENATON, "start"], cwd=root, env=project_env(), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while b"workers ready" not in self.path.read_bytes():  # none still loading the project as the clock runs
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.path.read_text()[-2000:])
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)
        self.log.close()


def client(root: Path, mode: str, count: int, steps: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "client.py", mode, str(count), str(steps)],
        cwd=root,
        env=project_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def read(root: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{root / '.zenaton' / 'zenaton.db'}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def wait_completed(root: Path, count: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while read(root, "SELECT count(*) FROM instances WHERE status = 'completed'")[0][0] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} completed in {timeout} s")
        time.sleep(0.05)


def attempts(root: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Each instance's task attempts: (position, started_at, finished_at), in journal order."""
    found: dict[str, list[tuple[int, float, float]]] = {}
    for instance_id, position, data in read(
        root, "SELECT instance_id, position, data FROM journal WHERE type = 'task_completed' ORDER BY instance_id, seq"
    ):
        fields = json.loads(data)
        found.setdefault(instance_id, []).append((position, fields["started_at"], fields["finished_at"]))
    return found


def last_completion(root: Path) -> float:
    return float(read(root, "SELECT max(created_at) FROM journal WHERE type = 'completed'")[0][0])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def workflows(directory: Path, name: str, count: int, steps: int) -> dict[str, Any]:
    root = project(directory, name)
    daemon = Running(root)
    try:
        sent = client(root, "burst", count, steps)
        wait_completed(root, count)
    finally:
        daemon.stop()
    return workflow_rates(count, steps, last_completion(root) - sent["start"])


def workflow_rates(count: int, steps: int, seconds: float) -> dict[str, Any]:
    """``count`` workflows of ``steps`` steps done in ``seconds``."""
    return {
        "instances": count,
        "steps": steps,
        "seconds": round(seconds, 3),
        "workflows_per_s": round(count / seconds, 1),
        "steps_per_s": round(count * steps / seconds, 1),
    }


def long_workflow(directory: Path, steps: int) -> dict[str, Any]:
    root = project(directory, "long")
    daemon = Running(root)
    try:
        client(root, "burst", 1, steps)
        wait_completed(root, 1)
    finally:
        daemon.stop()
    (runs,) = attempts(root).values()
    first, last = runs[0][1], runs[-1][2]
    ends = [end for _, _, end in runs]
    head = (ends[99] - ends[0]) / 99 * 1000
    tail = (ends[-1] - ends[-100]) / 99 * 1000
    return {
        "steps": steps,
        "seconds": round(last - first, 3),
        "steps_per_s": round(steps / (last - first), 1),
        "ms_per_step_first_100": round(head, 3),
        "ms_per_step_last_100": round(tail, 3),
        "last_over_first": round(tail / head, 2),
    }


def singles(directory: Path, count: int) -> dict[str, Any]:
    root = project(directory, "singles")
    daemon = Running(root)
    try:
        sent = client(root, "burst", count, 1)
    finally:
        daemon.stop()
    seconds = sent["end"] - sent["start"]
    return {"dispatches": count, "seconds": round(seconds, 3), "dispatches_per_s": round(count / seconds, 1)}


def latency(directory: Path, samples: int) -> dict[str, Any]:
    """On an idle daemon: dispatch returned -> first task started; a task ended -> the next started."""
    root = project(directory, "latency")
    daemon = Running(root)
    try:
        sent = client(root, "paced", samples, 3)
        wait_completed(root, samples)
    finally:
        daemon.stop()
    runs = attempts(root)
    to_first = [(runs[i][0][1] - at) * 1000 for i, at in sent["marks"]]
    between = [(b[1] - a[2]) * 1000 for run in runs.values() for a, b in itertools.pairwise(run)]
    return {
        "samples": samples,
        "dispatch_to_first_task_ms": {
            "p50": round(percentile(to_first, 50), 2),
            "p99": round(percentile(to_first, 99), 2),
        },
        "task_end_to_next_start_ms": {
            "p50": round(percentile(between, 50), 2),
            "p99": round(percentile(between, 99), 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.daemon_e2e")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario (medians; default 3)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--log-outside",
        action="store_true",
        help="write the daemon's output beside the project rather than in the folder its hot reload watches",
    )
    args = parser.parse_args(argv)
    global LOG_OUTSIDE
    LOG_OUTSIDE = args.log_outside
    sizes = QUICK if args.quick else FULL
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="zenaton-e2e-", dir=os.environ.get("BENCH_DIR")) as tmp:
        for round_ in range(max(args.rounds, 1)):
            directory = Path(tmp) / f"round{round_}"
            directory.mkdir()
            run: dict[str, Any] = {
                "baseline_commits_per_s": statistics.median(sqlite_baseline(directory, 2000) for _ in range(3))
            }
            run["one_step"] = workflows(directory, "one", sizes["one"], 1)
            run["ten_step"] = workflows(directory, "ten", sizes["ten"], 10)
            run["long"] = long_workflow(directory, sizes["long"])
            run["dispatch"] = singles(directory, sizes["singles"])
            run["latency"] = latency(directory, sizes["latency"])
            runs.append(run)
    results = median_run(runs)
    results["log_outside"], results["runs"] = LOG_OUTSIDE, runs
    baseline = results["baseline_commits_per_s"]
    print(
        f"raw SQLite FULL commits/s: {baseline:.0f} (median of {len(runs)} rounds; ratios: the median of each round's)"
    )
    for label, key, field in (
        ("one-step workflows/s", "one_step", "workflows_per_s"),
        ("ten-step steps/s", "ten_step", "steps_per_s"),
        ("2,000-step steps/s", "long", "steps_per_s"),
        ("single dispatch()/s", "dispatch", "dispatches_per_s"),
    ):
        ratio = statistics.median(run[key][field] / run["baseline_commits_per_s"] for run in runs)
        results[key]["ratio_to_raw"] = round(ratio, 2)
        print(f"{label:<24} {results[key][field]:>9.1f}  {ratio:.2f}x")
    long = results["long"]
    print(f"2,000-step ms/step: first 100 {long['ms_per_step_first_100']}, last 100 {long['ms_per_step_last_100']}")
    lat = results["latency"]
    print(f"dispatch -> first task (ms): {lat['dispatch_to_first_task_ms']}")
    print(f"task end -> next start (ms): {lat['task_end_to_next_start_ms']}")
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long `zenaton check` takes on a store of 10,000 running instances, as a user runs it.

    .venv/bin/python -m benchmarks.check [--quick] [--instances N] [--runs N] [--json FILE]

A new project (`zenaton init`: WelcomeFlow, the sample), whose SQLite store gets N WelcomeFlows
dispatched in bulk and run by the in-process engine until each waits at its second step (the
first task completed, the wait started): four journal entries each, as a running instance has.
Then the real `zenaton check` in the project's folder, its output to a pipe, ``--runs`` times:
wall time from the command's start to its exit (Python's start-up, the project's import, the
store's reads, every replay and the report included). Then the same after an incompatible
change to the code on disk (every instance would break, each listed), once as text and once
with ``--json``. Next to them: the CLI's start-up alone (`zenaton --help`). Numbers, not
assertions: the target is under 10 s for 10,000 instances.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.pool.inline import InlineRunner
from zenaton_runtime.project.config import load_config
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import open_store
from zenaton_runtime.timing.clock import FakeClock

from .harness import ZENATON, print_results, project_env

WAIT = "        Wait(UserActivated).seconds(1).execute()\n"
BREAKING = "        SendWelcomeEmail(self.email).execute()\n"  # a task where the journals hold the wait
TARGET_S = 10.0


class _User:
    def __init__(self, i: int) -> None:
        self.email = f"user{i}@example.com"
        self.slack_id = f"U{i}"


def build(root: Path, instances: int) -> dict[str, Any]:
    """The project and its store: ``instances`` WelcomeFlows, each waiting at its second step."""
    subprocess.run([ZENATON, "init", str(root)], check=True, capture_output=True, env=project_env())
    started = time.perf_counter()
    config = load_config(root)
    project = load_project(config.root, config.boot, config.module)
    clock = FakeClock(time.time())
    store = open_store(config.store_url, now=clock.now, durability="fast")
    control = Control(store, project.codec, config.env)

    def task_runtime(env: str) -> ClientRuntime:
        return ClientRuntime(Control(store, project.codec, env), env_from_client=False)

    runner = InlineRunner(project, runtime_factory=task_runtime)
    engine = Engine(store, project, runner, clock=clock, cache_size=100)
    flow = project.workflow("WelcomeFlow")
    for start in range(0, instances, 1000):
        control.dispatch_many([flow(_User(i)) for i in range(start, min(start + 1000, instances))])
        engine.run_until_idle(max_rounds=100_000)
    counts = store.counts()
    store.close()
    return {"running": counts["running"], "build_s": round(time.perf_counter() - started, 1)}


def timed(root: Path, *args: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run([ZENATON, *args], cwd=root, env=project_env(), capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode, result.stdout


def measure(root: Path, runs: int, instances: int) -> dict[str, Any]:
    help_s = statistics.median(timed(root, "--help")[0] for _ in range(runs))
    clean = []
    for _ in range(runs):
        seconds, code, _ = timed(root, "check")
        assert code == 0, f"zenaton check exited {code} on the unchanged code"
        clean.append(seconds)
    seconds_json, code, out = timed(root, "check", "--json")
    view = json.loads(out)
    assert code == 0 and view["checked"] == instances, view
    flow = root / "workflows" / "welcome_flow.py"
    flow.write_text(flow.read_text().replace(WAIT, BREAKING, 1))
    broken_text, code, out = timed(root, "check")
    assert code == 1 and out.count("broken ") == instances, "every instance should be listed as broken"
    broken_json, code, out = timed(root, "check", "--json")
    assert code == 1 and json.loads(out)["broken"] == instances
    return {
        "help_s": round(help_s, 3),
        "check_s": round(statistics.median(clean), 3),
        "check_s_runs": [round(s, 3) for s in clean],
        "replay_s_in_process": view["seconds"],  # the replays alone, as the command reports them
        "check_json_s": round(seconds_json, 3),
        "all_broken_check_s": round(broken_text, 3),
        "all_broken_check_json_s": round(broken_json, 3),
        "target_s": TARGET_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 instances, one run (the smoke test)")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the clean check (the median is reported)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    instances, runs = (200, 1) if args.quick else (args.instances, args.runs)
    with tempfile.TemporaryDirectory(prefix="zenaton-bench-check-", dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp) / "proj"
        results: dict[str, Any] = {"instances": instances, "machine": platform.platform(), "cpus": os.cpu_count()}
        results.update(build(root, instances))
        assert results["running"] == instances, results
        results.update(measure(root, runs, instances))
    print_results(results, args.json_path)
    verdict = "met" if results["check_s"] < TARGET_S else "NOT met"
    figure = f"{results['check_s']:.2f} s (target < {TARGET_S:g} s: {verdict})"
    print(f"zenaton check, {instances:,} running instances: {figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

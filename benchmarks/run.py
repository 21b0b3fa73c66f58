"""Every benchmark of the engine, in-process and against a real daemon, on real SQLite stores.

    python -m benchmarks.run [--quick] [--durability full|fast|both] [--concurrency N]
                             [--only SCENARIO,...] [--json FILE]

Each durability run first measures a raw-SQLite baseline on the same disk (one row per
commit, WAL, synchronous=FULL), so the figures can be read as ratios to it. Then one table
of every figure, then the JSON. Numbers, not assertions: nothing here passes or fails on speed.

Scenarios: one_step, ten_step, long (an in-process engine); dispatch, events, recovery, load
(a real `zenaton start` subprocess; see daemon_scenarios.py); cli (see cli_scenarios.py);
dashboard (a real `zenaton dashboard`; see dashboard.py).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import cli_scenarios, daemon_scenarios, dashboard
from .engine_scenarios import PROJECT, long_workflow, sqlite_baseline, workflows
from .harness import print_results
from .report import table

FULL = dict(one=500, ten=200, long=2000, singles=5000, bulk=100_000, waiters=10_000, recovery=10_000,
            load=10_000, cli_instances=100_000, cli_steps=2000, repeats=5, baseline=1000,
            **{f"dashboard_{k}": v for k, v in dashboard.FULL.items()})
QUICK = dict(one=20, ten=10, long=60, singles=200, bulk=200, waiters=200, recovery=200,
             load=200, cli_instances=200, cli_steps=60, repeats=1, baseline=100,
             **{f"dashboard_{k}": v for k, v in dashboard.QUICK.items()})

Scenario = Callable[[Path, str, int, dict[str, int]], dict[str, Any]]


def _median_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The run with the median steps/s of ``runs`` fresh ones, with every run's rate: on a shared
    machine one run alone moves by 10-20%."""
    results = sorted((measure() for _ in range(runs)), key=lambda r: r["steps_per_s"])
    median = dict(results[len(results) // 2])
    median["steps_per_s_runs"] = [r["steps_per_s"] for r in results]
    return median


def _long(d: Path, durability: str, c: int, s: dict[str, int]) -> dict[str, Any]:
    def measure() -> dict[str, Any]:
        result = long_workflow(d, durability, c, s["long"])
        del result["id"]
        return result

    return _median_of(s["repeats"], measure)


SCENARIOS: dict[str, Scenario] = {
    "one_step": lambda d, du, c, s: _median_of(s["repeats"], lambda: workflows(d, du, c, s["one"], 1)),
    "ten_step": lambda d, du, c, s: _median_of(s["repeats"], lambda: workflows(d, du, c, s["ten"], 10)),
    "long": _long,
    "dispatch": lambda d, du, c, s: daemon_scenarios.dispatch(d, du, c, s["singles"], s["bulk"]),
    "events": lambda d, du, c, s: daemon_scenarios.events(d, du, c, s["waiters"]),
    "recovery": lambda d, du, c, s: daemon_scenarios.recovery(d, du, c, s["recovery"]),
    "load": lambda d, du, c, s: daemon_scenarios.load(d, du, c, s["load"]),
    "cli": lambda d, du, c, s: cli_scenarios.cli(d, du, c, s["cli_instances"], s["cli_steps"], s["repeats"]),
    "dashboard": lambda d, du, c, s: dashboard.dashboard(
        d, du, c, {k.removeprefix("dashboard_"): v for k, v in s.items() if k.startswith("dashboard_")}),
}


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"{platform.machine()}{', ' + model if model else ''}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def revision() -> str:
    """The commit measured, + "dirty" when the engine's sources differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "runtime", "zenaton", "zenaton_cli")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + (" + uncommitted engine changes" if dirty else "")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (a smoke run of every scenario).")
    parser.add_argument("--durability", choices=["full", "fast", "both"], default="full")
    parser.add_argument("--concurrency", type=int, default=8, help="Task worker processes (engine and daemon).")
    parser.add_argument("--only", default=None, help=f"Comma-separated scenarios, of: {', '.join(SCENARIOS)}.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this file.")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else list(SCENARIOS)
    unknown = [name for name in args.only if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    durabilities = ["full", "fast"] if args.durability == "both" else [args.durability]
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "revision": revision(),
        "quick": args.quick,
        "concurrency": args.concurrency,
        "sizes": sizes,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="zenaton-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        for durability in durabilities:
            directory = Path(tmp) / durability
            directory.mkdir()
            run: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
            # five short measurements, their median: one alone moves by +-20% on a shared machine
            baselines = [round(sqlite_baseline(directory, sizes["baseline"]), 1) for _ in range(5)]
            run["baseline_runs"] = baselines
            run["baseline_commits_per_s"] = sorted(baselines)[2]
            results["runs"][durability] = run
            for name in args.only:
                print(f"[{durability}] {name} ...", file=sys.stderr, flush=True)
                start = time.perf_counter()
                run[name] = SCENARIOS[name](directory, durability, args.concurrency, sizes)
                print(f"[{durability}] {name} done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            run["load_average_after"] = [round(x, 2) for x in os.getloadavg()]  # 1/5/15 min: was it quiet?
    print(f"machine: {results['machine']}; revision {results['revision']}; concurrency {args.concurrency}"
          + ("; quick sizes" if args.quick else ""))
    print("load average (1 min) before -> after: " + "; ".join(
        f"{name} {r['load_average_before'][0]} -> {r['load_average_after'][0]}" for name, r in results["runs"].items()))
    print(table(results))
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

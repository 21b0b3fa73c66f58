"""The CLI's wall time on a big store: `zenaton list` and `zenaton inspect` of a long instance.

Next to them, the time of `python -c "import click, rich"` on the same run (the figure the
issue asks for: `import rich` alone loads little), of importing what rich rendering really
loads (rich.console, rich.table), and of `zenaton --help` (the CLI's own start-up: every
command imports the whole CLI).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from zenaton_runtime.client.control import Control
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import open_store

from .engine_scenarios import PROJECT, long_workflow
from .harness import ZENATON, make_project, store_path, wall_time


def cli(
    directory: Path, durability: str, concurrency: int, instances: int, steps: int, repeats: int
) -> dict[str, Any]:
    from benchflows import Steps  # type: ignore[import-not-found]  # benchmarks/project, on sys.path

    root = make_project(directory, f"cli-{durability}", durability, concurrency)
    url = f"sqlite:///{store_path(root)}"
    long = long_workflow(directory, durability, concurrency, steps, url=url)  # env "bench", as the toml says
    store = open_store(url, durability=durability)
    try:
        control = Control(store, load_project(PROJECT, "boot.py").codec, "bench")
        for start in range(0, instances, 5000):
            control.dispatch_many([Steps(1) for _ in range(min(5000, instances - start))])
        total = store.counts()
    finally:
        store.close()
    imports = wall_time([sys.executable, "-c", "import click, rich"], root, repeats)
    renders = wall_time([sys.executable, "-c", "import click, rich.console, rich.table"], root, repeats)
    helped = wall_time([ZENATON, "--help"], root, repeats)
    listed = wall_time([ZENATON, "list"], root, repeats)
    listed_json = wall_time([ZENATON, "list", "--json"], root, repeats)
    inspected = wall_time([ZENATON, "inspect", long["id"]], root, repeats)
    inspected_json = wall_time([ZENATON, "inspect", long["id"], "--json"], root, repeats)
    return {
        "store_instances": sum(v for k, v in total.items() if k != "tasks_queued"),
        "inspect_steps": steps,
        "import_click_rich": imports,
        "import_click_rich_table": renders,
        "help": helped,
        "list": listed,
        "list_json": listed_json,
        "inspect": inspected,
        "inspect_json": inspected_json,
        "list_over_import": round(listed["median_s"] / imports["median_s"], 2),
        "inspect_over_import": round(inspected["median_s"] / imports["median_s"], 2),
    }

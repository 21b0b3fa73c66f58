"""A fixed engine workload in one process, for instruction counts that do not move with the machine.

The shared machine's timings move by 20% from one minute to the next; the instructions the
engine executes for a fixed workload do not. Run the workload at two scales under callgrind and
take the difference: what remains is the engine's own cost, start-up and imports taken out.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.instructions ten_step 1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.instructions ten_step 2

(each prints "Collected : N"; the second N minus the first is the cost of 20 ten-step workflows).
Tasks run inline (no worker processes) on SQLite in a temporary directory (``BENCH_DIR``; /dev/shm
keeps the disk out of it), committing as ``durability = "fast"``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from zenaton_runtime.client.control import Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.pool.inline import InlineRunner
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import open_store

PROJECT = Path(__file__).parent / "project"
WORKLOADS = {"one_step": (100, 1), "ten_step": (20, 10), "long": (1, 200)}  # (instances, steps each) at scale 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("scale", type=int, nargs="?", default=1, help="Multiply the workload (1 or 2).")
    args = parser.parse_args()
    count, steps = WORKLOADS[args.workload]
    if args.workload == "long":
        steps *= args.scale
    else:
        count *= args.scale
    sys.path.insert(0, str(PROJECT))
    from benchflows import Steps  # type: ignore[import-not-found]  # benchmarks/project

    project = load_project(PROJECT, "boot.py")
    with tempfile.TemporaryDirectory(prefix="zenaton-icount-", dir=os.environ.get("BENCH_DIR")) as tmp:
        store = open_store(f"sqlite:///{tmp}/z.db", durability="fast")
        try:
            control = Control(store, project.codec, "bench")
            engine = Engine(store, project, InlineRunner(project), cache_size=10_000)
            for _ in range(count):
                control.dispatch(Steps(steps))
            engine.run_until_idle(100_000)
            completed = store.counts()["completed"]
        finally:
            store.close()
    if completed != count:
        raise SystemExit(f"only {completed} of {count} instances completed")
    print(f"{args.workload} x{args.scale}: {count} instance(s) of {steps} step(s) completed")


if __name__ == "__main__":
    main()

"""A plain client script, run by the benchmarks in a copy of this project (the daemon never imports it).

    python benchclient.py single N [--start-at T]   N x Steps(1).dispatch(), one transaction each
    python benchclient.py bulk N [--waiters]        Client().dispatch_many() of N Steps(1) (or Waiter("w<i>"))
    python benchclient.py events N [--offset K] [--control]
                                                    Waiter.where_id("w<i>").send_event(Go(i)), K <= i < K + N
                                                    (--control: the Control API, one lookup for all)

The last line printed is JSON: the wall-clock start and end (time.time()) of the measured part
and its length in seconds. Opening the store happens before the measured part.
"""
from __future__ import annotations

import argparse
import json
import time

from benchflows import Go, Steps, Waiter
from zenaton._runtime import get_runtime
from zenaton.client import Client


def single(count: int) -> None:
    for _ in range(count):
        Steps(1).dispatch()


def bulk(count: int, waiters: bool) -> None:
    jobs = [Waiter(f"w{i}") for i in range(count)] if waiters else [Steps(1) for _ in range(count)]
    ids = Client().dispatch_many(jobs)
    if None in ids:
        raise SystemExit(f"{ids.count(None)} of {count} were refused")


def events(count: int, offset: int, control: bool) -> None:
    keys = range(offset, offset + count)
    if not control:
        for i in keys:
            Waiter.where_id(f"w{i}").send_event(Go(i))
        return
    api = get_runtime().control_api  # type: ignore[attr-defined]
    waiting = {i.custom_id: i for i in api.store.list_instances(env=api.env, name="Waiter")}
    for i in keys:
        api.send_event(waiting[f"w{i}"], Go(i))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["single", "bulk", "events"])
    parser.add_argument("count", type=int)
    parser.add_argument("--start-at", type=float, default=None, help="Wall time to start at (several processes).")
    parser.add_argument("--waiters", action="store_true")
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    get_runtime()  # config read and store opened before the clock starts
    if args.start_at is not None:
        time.sleep(max(0.0, args.start_at - time.time()))
    wall, start = time.time(), time.perf_counter()
    if args.command == "single":
        single(args.count)
    elif args.command == "bulk":
        bulk(args.count, args.waiters)
    else:
        events(args.count, args.offset, args.control)
    seconds = time.perf_counter() - start
    print(json.dumps({"count": args.count, "start": wall, "end": wall + seconds, "seconds": seconds}))


if __name__ == "__main__":
    main()

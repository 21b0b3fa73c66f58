"""The crash loop at full size: a real daemon SIGKILLed at random moments while it works.

    python -m benchmarks.crash_loop [--instances 200] [--kills 30] [--seed N] [--json FILE] [--keep DIR]
                                    [--postgres URL [--daemons 2]]

Prints the figures (crashes survived, instances and steps checked, instances lost,
duplicate step results) and every problem found; exits 1 if there is any. The same
workload and checks run, smaller, in tests/test_crash_loop.py. With ``--postgres`` the daemons
share that (empty) PostgreSQL database, ``--daemons`` of them, the kills alternating between them
(smaller in tests/test_postgres_daemons_e2e.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.chaos_workload import CrashLoop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crash_loop", description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None, help="default: $ZENATON_CHAOS_SEED or a random one")
    parser.add_argument("--min-life", type=float, default=0.15, help="shortest life of a daemon before its kill (s)")
    parser.add_argument("--max-life", type=float, default=1.2, help="longest life of a daemon before its kill (s)")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--postgres", default=None, help="an empty PostgreSQL database's URL (default: SQLite)")
    parser.add_argument("--daemons", type=int, default=1, help="daemons sharing the store (PostgreSQL only)")
    parser.add_argument("--lease-ttl", type=float, default=5.0, help="the daemons' lease_ttl on PostgreSQL (s)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="run in this (new) directory and keep it")
    args = parser.parse_args(argv)
    if args.daemons > 1 and not args.postgres:
        parser.error("several daemons share a PostgreSQL store: give --postgres URL")
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        directory, cleanup = args.keep, None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="zenaton-crash-loop-")
        directory = Path(cleanup.name)
    try:
        loop = CrashLoop(
            directory, seed=args.seed, instances=args.instances, kills=args.kills,
            delay=(args.min_life, args.max_life), concurrency=args.concurrency,
            store_url=args.postgres, daemons=args.daemons,
            daemon_settings=f"decision_timeout = 1\nlease_ttl = {args.lease_ttl:g}\n" if args.postgres else "",
        )
        report = loop.run(timeout=args.timeout)
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    print(report.summary())
    for name, output in report.clients.items():
        print(f"  client {name}: {output}")
    for problem in report.problems:
        print(f"  problem: {problem}")
    if args.json_path is not None:
        args.json_path.write_text(json.dumps({**report.figures(), "problem_list": report.problems}, indent=2) + "\n")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

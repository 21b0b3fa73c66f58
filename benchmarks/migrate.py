"""`zenaton migrate --to postgresql://...` on a store of many instances: the copy and its check.

    .venv/bin/python -m benchmarks.migrate [--instances 10000] [--to postgresql://user@host/db]

Builds the SQLite store with a real daemon (the test project's ``Sequential``: two tasks each,
so six journal entries and two tasks per instance), then runs the real command into an empty
database: the one given by ``--to``, or a new one on a throwaway server (``initdb``, as the
tests start). Prints the command's own figures (copy, check) and its wall time.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from tests.e2e import Daemon, make_project, zenaton


def build(root: Path, count: int) -> float:
    started = time.monotonic()
    (root / "seq.jsonl").write_text("".join(f"[{n}]\n" for n in range(count)))
    zenaton(root, "dispatch", "Sequential", "--from-file", str(root / "seq.jsonl"), "--json")
    store = root / ".zenaton" / "zenaton.db"

    def completed() -> int:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM instances WHERE status = 'completed'").fetchone()[0])

    daemon = Daemon(root).started()
    try:
        daemon.wait_until(lambda: completed() == count, timeout=3600, what="all completed")
    finally:
        daemon.stop()
    return time.monotonic() - started


def measure(root: Path, url: str) -> dict[str, object]:
    started = time.monotonic()
    report = json.loads(zenaton(root, "migrate", "--to", url, "--json").stdout)
    report["wall_seconds"] = round(time.monotonic() - started, 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--to", default=None, help="an empty PostgreSQL database (default: a throwaway server's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = make_project(Path(folder), concurrency=4)
        print(f"built {args.instances} instances in {build(root, args.instances):.1f}s", flush=True)
        if args.to:
            report = measure(root, args.to)
        else:
            import psycopg

            from tests.postgres_server import Server

            server = Server()
            try:
                with psycopg.connect(f"{server.url}/postgres", autocommit=True) as admin:
                    admin.execute("CREATE DATABASE bench")
                report = measure(root, f"{server.url}/bench")
            finally:
                server.stop()
    print(json.dumps({k: report[k] for k in ("rows", "copy_seconds", "verify_seconds", "wall_seconds", "verified")}))


if __name__ == "__main__":
    main()

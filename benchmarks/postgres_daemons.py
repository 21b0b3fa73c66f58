"""Daemons sharing one PostgreSQL database, end to end: `zenaton start` in one or two copies of
benchmarks/project pointed at the same database, the work dispatched one instance at a time by a
plain client script once every daemon logged its workers ready, the clock read from what the
store recorded.

    python -m benchmarks.postgres_daemons [--quick] [--rounds N] [--url postgresql://user@host] [--json FILE]

With no --url, a throwaway server is started from the machine's PostgreSQL binaries (as the
tests do); with one (a server, no database: the role needs CREATEDB), each scenario gets a new
database there. Figures, with one daemon and with two, beside the raw rate of the same server
in the same run (single-row INSERT + COMMIT per second, synchronous_commit = on):
- one-step: N one-step workflows, first dispatch to last completion (workflows/s);
- ten-step: N ten-step workflows, the same (steps/s);
- long: one 2,000-step workflow (steps/s: one daemon drives it, whatever the number);
- dispatch: single dispatch() calls from one script, daemons running (dispatches/s), and how
  many of those one-step workflows were complete when the last dispatch returned: the daemons
  run them meanwhile, on the cores the client needs too, so a rate is read beside the work done;
- takeover: two daemons at work, one SIGKILLed; seconds until the survivor owns all its
  instances (the default lease_ttl, 15 s, unless --lease-ttl).
Each figure is the median of --rounds runs (3), one daemon and two taking turns, and the raw rate
the median of three samples a round: a disk's fsync rate can double or halve from one minute to
the next, and a single run of each compared one moment with another. Every run is in the JSON.
Nothing here asserts: these are figures.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .daemon_e2e import CLIENT, client, workflow_rates
from .harness import PROJECT, ZENATON, median_run, print_results, project_env

FULL = {"one": 500, "ten": 200, "long": 2000, "singles": 5000, "takeover": 100}
QUICK = {"one": 50, "ten": 20, "long": 200, "singles": 300, "takeover": 30}


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def raw_commits_per_s(url: str, count: int = 2000) -> float:
    """Single-row INSERT + COMMIT, one after the other, synchronous_commit = on."""
    with connect(url) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS raw_baseline (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)")
        began = time.perf_counter()
        for n in range(count):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO raw_baseline (v) VALUES (%s)", (f"row {n}",))
            conn.execute("COMMIT")
        return count / (time.perf_counter() - began)


def read(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return conn.execute(sql, params).fetchall()


class Daemons:
    """``count`` daemons, each `zenaton start` in its own copy of the project, on one database."""

    def __init__(self, directory: Path, url: str, count: int, settings: str = "") -> None:
        self.url, self.roots, self.processes, self.logs, self.files = url, [], [], [], []
        for n in range(count):
            root = directory / f"daemon{n}"
            subprocess.run(["cp", "-r", str(PROJECT), str(root)], check=True)
            (root / "zenaton.toml").write_text(
                f'[project]\nname = "pg-bench"\nenv = "bench"\nboot = "boot.py"\n\n[daemon]\n{settings}\n'
                f'[store]\nurl = "{url}"\n'
            )
            (root / "client.py").write_text(CLIENT)
            self.roots.append(root)
        for root in self.roots:
            log = root.parent / f"{root.name}.log"
            self.logs.append(log)
            self.files.append(open(log, "wb"))  # noqa: SIM115  (closed by stop())
            self.processes.append(
                subprocess.Popen(
                    [ZENATON, "start"], cwd=root, env=project_env(), stdout=self.files[-1], stderr=subprocess.STDOUT
                )
            )
        deadline = time.monotonic() + 60
        for process, log in zip(self.processes, self.logs, strict=True):
            while b"workers ready" not in log.read_bytes():  # none still loading the project as the clock runs
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()[-2000:])
                time.sleep(0.02)

    def client(self, count: int, steps: int) -> dict[str, Any]:
        return client(self.roots[0], "burst", count, steps)

    def wait_completed(self, count: int, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while read(self.url, "SELECT count(*) FROM zenaton.instances WHERE status = 'completed'")[0][0] < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} completed in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(timeout=120)
        for file in self.files:
            file.close()


def last_completion(url: str) -> float:
    return float(read(url, "SELECT max(created_at) FROM zenaton.journal WHERE type = 'completed'")[0][0])


def workflows(directory: Path, url: str, daemons: int, count: int, steps: int) -> dict[str, Any]:
    running = Daemons(directory, url, daemons)
    try:
        sent = running.client(count, steps)
        running.wait_completed(count)
    finally:
        running.stop()
    return workflow_rates(count, steps, last_completion(url) - sent["start"])


def long_workflow(directory: Path, url: str, daemons: int, steps: int) -> dict[str, Any]:
    running = Daemons(directory, url, daemons)
    try:
        running.client(1, steps)
        running.wait_completed(1)
    finally:
        running.stop()
    first, last = read(
        url,
        "SELECT min((data::json->>'started_at')::float8), max((data::json->>'finished_at')::float8)"
        " FROM zenaton.journal WHERE type = 'task_completed'",
    )[0]
    return {"steps": steps, "seconds": round(last - first, 3), "steps_per_s": round(steps / (last - first), 1)}


def singles(directory: Path, url: str, daemons: int, count: int) -> dict[str, Any]:
    running = Daemons(directory, url, daemons)
    try:
        sent = running.client(count, 1)
        done = read(url, "SELECT count(*) FROM zenaton.instances WHERE status = 'completed'")[0][0]
    finally:
        running.stop()
    seconds = sent["end"] - sent["start"]
    return {
        "dispatches": count,
        "seconds": round(seconds, 3),
        "dispatches_per_s": round(count / seconds, 1),
        "completed_when_sent": done,
    }


def takeover(directory: Path, url: str, count: int, lease_ttl: float | None) -> dict[str, Any]:
    """Two daemons at work on ``count`` long-ish workflows; the one holding the most is SIGKILLed
    once it holds a few; how long until none is owned by it any more."""
    settings = ""
    if lease_ttl is not None:
        settings = f"lease_ttl = {lease_ttl:g}\ndecision_timeout = {max(lease_ttl - 4, 0.5):g}\n"
    running = Daemons(directory, url, 2, settings)
    try:
        leases = dict(read(url, "SELECT pid, id FROM zenaton.daemons"))
        subprocess.Popen(
            [sys.executable, "client.py", "burst", str(count), "200"],
            cwd=running.roots[0],
            env=project_env(),
            stdout=subprocess.DEVNULL,
        )
        most = (
            "SELECT owner, count(*) FROM zenaton.instances WHERE owner IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        )
        deadline = time.monotonic() + 120
        while not (top := read(url, most)) or top[0][1] < 5:
            if time.monotonic() > deadline:
                raise RuntimeError("no daemon took instances")
            time.sleep(0.01)
        lease, held = top[0]
        victim = next(p for p in running.processes if leases.get(p.pid) == lease)
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        owned = "SELECT count(*) FROM zenaton.instances WHERE owner = %s"
        while read(url, owned, (lease,))[0][0] > 0:
            time.sleep(0.02)
        seconds = time.monotonic() - killed
    finally:
        running.stop()
    return {"instances_held_at_kill": held, "seconds_to_take_over": round(seconds, 2), "lease_ttl": lease_ttl or 15.0}


@contextmanager
def databases(url: str | None) -> Iterator[Any]:
    """A function giving a new empty database's url each time it is called."""
    server = None
    if url is None:
        from tests.postgres_server import Server

        server = Server()
        url = server.url
    made: list[str] = []

    def new() -> str:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with connect(f"{url}/postgres") as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{url}/{name}"

    try:
        yield new
    finally:
        try:
            with connect(f"{url}/postgres") as admin:
                for name in made:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            if server is not None:
                server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres_daemons")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", default=None, help="a PostgreSQL server (postgresql://user@host:port), no database")
    parser.add_argument("--lease-ttl", type=float, default=None, help="for the takeover (default: zenaton's, 15 s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario (medians; default 3)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zenaton-pg-") as tmp, databases(args.url) as new_database:
        directory = Path(tmp)
        raws: list[float] = []
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for round_ in range(max(args.rounds, 1)):
            raws += [raw_commits_per_s(new_database()) for _ in range(3)]
            # one daemon, then two, then two, then one...: the disk's pace drifts over minutes
            for daemons in (1, 2) if round_ % 2 == 0 else (2, 1):
                at = directory / f"r{round_}x{daemons}"
                scenario: dict[str, Any] = {}
                for name in ("one", "ten", "long", "singles"):
                    (at / name).mkdir(parents=True)
                scenario["one_step"] = workflows(at / "one", new_database(), daemons, sizes["one"], 1)
                scenario["ten_step"] = workflows(at / "ten", new_database(), daemons, sizes["ten"], 10)
                scenario["long"] = long_workflow(at / "long", new_database(), daemons, sizes["long"])
                scenario["dispatch"] = singles(at / "singles", new_database(), daemons, sizes["singles"])
                runs[daemons].append(scenario)
        results["raw_commits_per_s"] = round(statistics.median(raws), 1)
        results["raw_samples"] = [round(raw, 1) for raw in raws]  # three a round, in order
        for daemons, scenarios in runs.items():
            results[f"daemons_{daemons}"] = median_run(scenarios)
            results[f"daemons_{daemons}_runs"] = scenarios
        (directory / "takeover").mkdir()
        results["takeover"] = takeover(directory / "takeover", new_database(), sizes["takeover"], args.lease_ttl)
    raw = results["raw_commits_per_s"]
    print(f"raw PostgreSQL INSERT+COMMIT/s (synchronous_commit = on): {raw:.0f}")
    print(f"{'':<24} {'1 daemon':>16} {'2 daemons':>16}  2/1")
    for label, key, field in (
        ("one-step workflows/s", "one_step", "workflows_per_s"),
        ("ten-step steps/s", "ten_step", "steps_per_s"),
        ("2,000-step steps/s", "long", "steps_per_s"),
        ("single dispatch()/s", "dispatch", "dispatches_per_s"),
    ):
        one, two = results["daemons_1"][key][field], results["daemons_2"][key][field]
        print(f"{label:<24} {one:>9.1f} ({one / raw:.2f}x) {two:>9.1f} ({two / raw:.2f}x)  {two / one:.2f}")
    one, two = (results[f"daemons_{n}"]["dispatch"]["completed_when_sent"] for n in (1, 2))
    print(f"{'  complete when sent':<24} {one:>16} {two:>16}")
    t = results["takeover"]
    print(
        f"takeover after SIGKILL: {t['seconds_to_take_over']} s"
        f" (lease_ttl {t['lease_ttl']} s, {t['instances_held_at_kill']} held)"
    )
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The dashboard's figures: its pages' server time on a big store, and how soon a step shows.

    .venv/bin/python -m benchmarks.dashboard [--quick] [--durability full|fast] [--json FILE]

1. The instances page (``/``, ``/?status=failed``, ``/?name=Waiter`` and a page half-way down the
   list by ``?before=``) on a SQLite store of 100,000 instances in spread statuses.
2. The instance page of one 2,000-step instance (a real run of 2,000 sequential tasks).
3. Live updates: a real daemon runs a workflow of 20 tasks that each sleep 0.6-1.4 s; a poller does
   what the instance page's script does (GET the version URL every 0.5 s; when it changed, GET the
   page) and notes when each completed task first shows in the HTML. The delay is measured from
   the journal's ``task_completed`` entry (its ``created_at``, the daemon's clock on this machine).

The real ``zenaton dashboard --port 0`` serves every request (one keep-alive connection, the
token as ``Authorization: Bearer``). Each page gets one warm-up request, then 20 timed: the
``Server-Timing`` header (the server's own time, up to its first byte) and the time the client
saw (until the whole body was read), median and max. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import random
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from zenaton_runtime.models import Entry, Instance, InstanceStatus, Kind
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import open_store
from zenaton_runtime.store.ops import NewEntry

from .engine_scenarios import PROJECT, long_workflow
from .harness import ZENATON, Daemon, make_project, print_results, project_env, store_path

# task_ms: the live figure's tasks last from 0.6 to 1.4 times this (0.6-1.4 s: completions land
# anywhere in the poll's 0.5 s)
FULL = dict(instances=100_000, steps=2000, requests=20, live=20, quiet=5, task_ms=1000)
QUICK = dict(instances=200, steps=60, requests=3, live=2, quiet=1, task_ms=300)
TARGETS_MS = {"list": 150.0, "instance": 500.0, "live": 1000.0}
POLL = 0.5  # seconds between the page script's looks at the version URL (dashboard.js)
STATUSES = [  # a store that has run a while: mostly finished instances
    (InstanceStatus.COMPLETED, 0.90),
    (InstanceStatus.RUNNING, 0.08),
    (InstanceStatus.PAUSED, 0.015),
    (InstanceStatus.KILLED, 0.004),
    (InstanceStatus.FAILED, 0.001),  # a workflow cannot fail: it is paused instead
]
PACED = '''"""A workflow whose tasks finish at spread times, for the dashboard's live-update figure."""
import time

from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.traits.zenatonable import Zenatonable


class Pause(Task, Zenatonable):
    def __init__(self, seconds):
        self.seconds = seconds

    def handle(self):
        time.sleep(self.seconds)
        return self.seconds


class Paced(Workflow, Zenatonable):
    """Counts its steps in a property: each step changes the instance's row."""

    def __init__(self, gaps):
        self.gaps = gaps
        self.done = 0

    def handle(self):
        for gap in self.gaps:
            Pause(gap).execute()
            self.done += 1


class Quiet(Workflow, Zenatonable):
    """The same tasks, but no property changes between its steps."""

    def __init__(self, gaps):
        self.gaps = gaps

    def handle(self):
        for gap in self.gaps:
            Pause(gap).execute()
'''
STEP_ROW = re.compile(r'<tr class="step ([\w-]+)">\s*<td class="num">(\d*)</td>\s*<td>(\w+)</td>')
VERSION = re.compile(r'data-version="([^"]*)"')
SEQ = re.compile(r'data-seq="(\d+)"')


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class DashboardServer:
    """`zenaton dashboard --port 0` in ``root``: the address and token from its printed line."""

    def __init__(self, root: Path, timeout: float = 60.0) -> None:
        self.log_path = root / "dashboard.log"
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [ZENATON, "dashboard", "--port", "0"],
                cwd=root,
                env=project_env(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        deadline, line = time.monotonic() + timeout, ""
        while "Zenaton dashboard:" not in line:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                self.stop()
                raise RuntimeError(f"the dashboard printed no address in {timeout:.0f} s")
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the dashboard exited {self.process.returncode}:\n{self.log_path.read_text()}")
        address = urlsplit(line.split("Zenaton dashboard:", 1)[1].strip())
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.token = dict(part.split("=", 1) for part in address.query.split("&"))["token"]

    def client(self) -> Client:
        return Client(self.host, self.port, self.token)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclasses.dataclass
class Answer:
    status: int
    body: str
    server_ms: float  # the Server-Timing header: the server's time up to its first byte
    total_ms: float  # what the client saw: request sent, whole body read


class Client:
    """One keep-alive connection, as a browser keeps one, with the token as a Bearer header."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Answer:
        start = time.perf_counter()
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read().decode()
        total = time.perf_counter() - start
        timing = response.getheader("server-timing") or ""
        match = re.search(r"dur=([\d.]+)", timing)
        if response.status != 200 or match is None:
            raise RuntimeError(f"GET {path}: {response.status} (Server-Timing {timing!r}):\n{body[:2000]}")
        return Answer(response.status, body, float(match.group(1)), total * 1000)

    def close(self) -> None:
        self.connection.close()


def timed(client: Client, path: str, requests: int) -> dict[str, Any]:
    """One warm-up request, then ``requests`` timed ones: median and max of each time."""
    client.get(path)
    answers = [client.get(path) for _ in range(requests)]
    server = [a.server_ms for a in answers]
    total = [a.total_ms for a in answers]
    return {
        "path": path,
        "requests": requests,
        "bytes": len(answers[-1].body.encode()),
        "server_ms_median": round(statistics.median(server), 1),
        "server_ms_max": round(max(server), 1),
        "client_ms_median": round(statistics.median(total), 1),
        "client_ms_max": round(max(total), 1),
    }


def fill(url: str, durability: str, count: int, env: str, seed: int = 11) -> dict[str, Any]:
    """``count`` instances written as a bulk dispatch writes them (``Store.create_instances``,
    batches of 5,000), of three names and in spread statuses, 90% in ``env``; one a second
    before now, the newest last. Returns what the pages are asked for."""
    from benchflows import Noop, Steps, Waiter  # type: ignore[import-not-found]  # benchmarks/project

    rng = random.Random(seed)
    codec = load_project(PROJECT, "boot.py").codec
    store = open_store(url, durability=durability)
    statuses, weights = zip(*STATUSES, strict=True)
    jobs = [
        (Kind.WORKFLOW, "Steps", codec.encode(Steps(1), "Steps"), 0.65),
        (Kind.WORKFLOW, "Waiter", codec.encode(Waiter("w"), "Waiter"), 0.15),
        (Kind.TASK, "Noop", codec.encode(Noop(1), "Noop"), 0.20),
    ]
    error = json.dumps({"class": "RuntimeError", "message": "the mail server said no", "traceback": "..."})
    ours: list[str] = []
    first = time.time() - count
    try:
        for start in range(0, count, 5000):
            records: list[Any] = []
            for i in range(start, min(start + 5000, count)):
                kind, name, data, _ = rng.choices(jobs, [j[3] for j in jobs])[0]
                status = rng.choices(statuses, weights)[0]
                if kind is Kind.WORKFLOW and status is InstanceStatus.FAILED:
                    status = InstanceStatus.PAUSED
                created = first + i
                instance = Instance(
                    id=f"{rng.getrandbits(128):032x}",
                    kind=kind,
                    name=name,
                    version=None,
                    custom_id=f"w{i}" if name == "Waiter" else None,
                    env=env if rng.random() < 0.9 else "staging",
                    status=status,
                    data=data,
                    properties=None if status is InstanceStatus.RUNNING else data,
                    error=error if status in (InstanceStatus.PAUSED, InstanceStatus.FAILED) else None,
                    parent_id=None,
                    parent_position=None,
                    created_at=created,
                    updated_at=created + rng.random(),
                )
                records.append((instance, NewEntry(instance.id, Entry.STARTED, name=name, data=data), None))
                if instance.env == env:
                    ours.append(instance.id)
            store.create_instances(records)
        total = sum(v for k, v in store.counts().items() if k != "tasks_queued")
    finally:
        store.close()
    ours.reverse()  # newest first, as the page lists them
    return {
        "store_instances": total,
        "env_instances": len(ours),
        "deep_cursor": ours[min(len(ours) // 2, len(ours) - 1)],
    }


def pages(directory: Path, durability: str, concurrency: int, sizes: dict[str, int]) -> dict[str, Any]:
    """Figures 1 and 2: the instances page on a big store, the instance page of a long instance."""
    root = make_project(directory, f"dashboard-{durability}", durability, concurrency)
    url = f"sqlite:///{store_path(root)}"
    long = long_workflow(directory, durability, concurrency, sizes["steps"], url=url)  # env "bench"
    store = fill(url, durability, sizes["instances"], "bench")
    server = DashboardServer(root)
    client = server.client()
    try:
        requests = sizes["requests"]
        listed = {
            "all": timed(client, "/", requests),
            "failed": timed(client, "/?status=failed", requests),
            "name": timed(client, "/?name=Waiter", requests),
            "deep": timed(client, "/?" + urlencode({"before": store["deep_cursor"]}), requests),
        }
        instance = timed(client, f"/instances/{long['id']}", requests)
        seq = SEQ.search(client.get(f"/instances/{long['id']}").body).group(1)  # type: ignore[union-attr]
        version = timed(client, f"/api/instances/{long['id']}/version?seq={seq}", requests)  # as the page asks
    finally:
        client.close()
        server.stop()
    return {**store, "steps": sizes["steps"], "list": listed, "instance": instance, "version": version}


def completed_steps(html: str) -> set[int]:
    """The positions of the completed task steps in an instance page's HTML."""
    return {int(p) for status, p, kind in STEP_ROW.findall(html) if kind == "task" and status == "completed" and p}


def watch(client: Client, instance_id: str, steps: int, timeout: float) -> dict[str, Any]:
    """Poll as the page's script does: every 0.5 s (a look that takes longer skips the ticks it
    overlaps), GET the version; when it differs from the page's, GET the page and take its version.
    Returns when each completed step was first seen (time.time() once the page was read), and
    when the look that found the change started."""
    page_path, version_path = f"/instances/{instance_id}", f"/api/instances/{instance_id}/version"
    page = client.get(page_path)
    version = VERSION.search(page.body).group(1)  # type: ignore[union-attr]
    seq = SEQ.search(page.body).group(1)  # type: ignore[union-attr]
    seen: dict[int, dict[str, float]] = {p: {"seen": 0.0, "look": 0.0} for p in completed_steps(page.body)}
    looks, redraws, version_ms, page_ms = 0, 0, [], []
    deadline = time.monotonic() + timeout
    tick = time.monotonic()
    while len(seen) < steps:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(seen)} of {steps} steps seen in {timeout:.0f} s")
        tick += POLL
        while tick < time.monotonic():  # setInterval's ticks during a busy look are dropped
            tick += POLL
        time.sleep(max(0.0, tick - time.monotonic()))
        look = time.time()
        looks += 1
        answer = client.get(f"{version_path}?seq={seq}")
        version_ms.append(answer.server_ms)
        if json.loads(answer.body)["version"] == version:
            continue
        page = client.get(page_path)
        now = time.time()
        redraws += 1
        page_ms.append(page.server_ms)
        version = VERSION.search(page.body).group(1)  # type: ignore[union-attr]
        seq = SEQ.search(page.body).group(1)  # type: ignore[union-attr]
        for position in completed_steps(page.body) - seen.keys():
            seen[position] = {"seen": now, "look": look}
    return {
        "seen": seen,
        "looks": looks,
        "redraws": redraws,
        "version_server_ms_median": round(statistics.median(version_ms), 1),
        "page_server_ms_median": round(statistics.median(page_ms), 1) if page_ms else None,
    }


def live(
    directory: Path, durability: str, concurrency: int, steps: int, quiet: int, task_ms: int = 1000, seed: int = 5
) -> dict[str, Any]:
    """Figure 3: from a task's completion in the journal to its row in an open instance page.

    Two workflows of the same tasks (0.6-1.4 times ``task_ms`` each: with 1,000, completions fall
    anywhere in the poll's 0.5 s): ``Paced`` changes a property at each step, ``Quiet`` none."""
    root = make_project(directory, f"dashboard-live-{durability}", durability, concurrency)
    (root / "paced.py").write_text(PACED)
    with open(root / "boot.py", "a") as boot:
        boot.write("import paced  # noqa: F401\n")
    rng = random.Random(seed)
    daemon = Daemon(root)
    server: DashboardServer | None = None
    client: Client | None = None
    figures: dict[str, Any] = {}
    try:
        daemon.wait_started()
        server = DashboardServer(root)
        client = server.client()
        for name, count in (("Paced", steps), ("Quiet", quiet)):
            gaps = [round(rng.uniform(0.6, 1.4) * task_ms / 1000, 3) for _ in range(count)]
            gaps[0] = max(gaps[0], 0.5)  # time to open the page before the first task completes
            dispatched = subprocess.run(
                [ZENATON, "dispatch", name, json.dumps(gaps), "--json"],
                cwd=root,
                env=project_env(),
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            )
            instance_id = json.loads(dispatched.stdout)["id"]
            figures[name.lower()] = {"gaps": gaps, **watch(client, instance_id, count, timeout=sum(gaps) + 60)}
            figures[name.lower()]["id"] = instance_id
    finally:
        if client is not None:
            client.close()
        if server is not None:
            server.stop()
        daemon.stop()
    store = open_store(f"sqlite:///{store_path(root)}", durability=durability)
    try:
        for figure in figures.values():
            journal = store.journal(figure.pop("id"))
            figure["done"] = {e.position: e.created_at for e in journal if e.type is Entry.TASK_COMPLETED}
    finally:
        store.close()
    return {name: delays(figure) for name, figure in figures.items()}


def delays(figure: dict[str, Any]) -> dict[str, Any]:
    """The delay of each step: from its journal entry to the end of the page's GET that showed it."""
    seen, done, gaps = figure.pop("seen"), figure.pop("done"), figure.pop("gaps")
    positions = sorted(p for p in done if seen.get(p, {}).get("seen"))  # not those in the first page
    if not positions:
        raise RuntimeError("every step had completed before the page was first read: no delay to measure")
    shown = [seen[p]["seen"] - done[p] for p in positions]
    return {
        "steps": len(positions),
        "task_seconds": [min(gaps), max(gaps)],
        "delay_ms_p50": _ms(statistics.median(shown)),
        "delay_ms_max": _ms(max(shown)),
        "delay_ms_min": _ms(min(shown)),
        "delay_ms_runs": [_ms(d) for d in shown],
        # the look that found the change: how long after the entry it began, and how long it took
        "to_look_ms_median": _ms(statistics.median(seen[p]["look"] - done[p] for p in positions)),
        "look_ms_median": _ms(statistics.median(seen[p]["seen"] - seen[p]["look"] for p in positions)),
        **figure,
    }


def dashboard(directory: Path, durability: str, concurrency: int, sizes: dict[str, int]) -> dict[str, Any]:
    """The three figures of the dashboard (the scenario `benchmarks.run` calls "dashboard")."""
    figures = pages(directory, durability, concurrency, sizes)
    figures["live"] = live(directory, durability, concurrency, sizes["live"], sizes["quiet"], sizes["task_ms"])
    return figures


def rows(s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The figures as rows of benchmarks.report's table: figure, value, target."""

    def page(name: str, t: dict[str, Any], target: str) -> tuple[str, str, str]:
        value = (
            f"{t['server_ms_median']:,.1f} ms (max {t['server_ms_max']:,.1f}); client "
            f"{t['client_ms_median']:,.1f} ms (max {t['client_ms_max']:,.1f})"
        )
        return name, value, target

    def shown(name: str, t: dict[str, Any]) -> tuple[str, str, str]:
        value = f"p50 {t['delay_ms_p50']:,.0f} ms, max {t['delay_ms_max']:,.0f} ms ({t['steps']} steps)"
        return name, value, f"< {TARGETS_MS['live']:.0f} ms"

    n, listed, live_ = s["store_instances"], s["list"], s["live"]
    list_target = f"< {TARGETS_MS['list']:.0f} ms"
    return [
        page(
            f"dashboard /, {n:,} instances: server time, median of {listed['all']['requests']}",
            listed["all"],
            list_target,
        ),
        page("  /?status=failed", listed["failed"], list_target),
        page("  /?name=Waiter", listed["name"], list_target),
        page(f"  /?before=<the {s['env_instances'] // 2:,}th>", listed["deep"], list_target),
        page(f"dashboard /instances/<id>, {s['steps']:,} steps", s["instance"], f"< {TARGETS_MS['instance']:.0f} ms"),
        page("  /api/instances/<id>/version", s["version"], ""),
        shown("dashboard live update: task completed -> shown in the open page", live_["paced"]),
        shown("  the same, a workflow that changes no property", live_["quiet"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (a smoke run).")
    parser.add_argument("--durability", choices=["full", "fast"], default="full")
    parser.add_argument("--concurrency", type=int, default=8, help="Task worker processes.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this file.")
    args = parser.parse_args(argv)
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    from .run import machine, revision  # run.py imports this module: only once it is loaded

    sizes = QUICK if args.quick else FULL
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zenaton-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        results = dashboard(Path(tmp), args.durability, args.concurrency, sizes)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results.update(machine=machine(), revision=revision(), durability=args.durability)
    results["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(
        f"machine: {results['machine']}; revision {results['revision']}; durability {args.durability}; "
        f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; {results['seconds']} s"
    )
    table = [("figure", "value", "target"), *rows(results)]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for number, line in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if number == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

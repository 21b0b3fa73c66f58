"""The crash-loop workload, shared by tests/test_crash_loop.py and benchmarks/crash_loop.py.

A real daemon runs a mix of workflow instances (sequential steps, a Parallel, waits with
short timeouts that a client process sends events to, child workflows executed and
dispatched, automatic retries) from the test project's ``flowlib.chaos``, while it is
SIGKILLed at random moments and restarted. Instances are dispatched by a client process
during the chaos, not only before it.

The issue's promise, checked at the end: an instance, once dispatched, is never lost; a
completed step is never run again; a crash costs at most the re-run of the tasks that
were in flight. Each ``Step`` run appends ``run <task id> <retry index> <epoch> <label>``
to a log (the epoch is the number of the daemon that ran it). Right after each kill, with
the daemon dead, the store is read: a run of epoch e that is not the step's last run is
allowed only if that snapshot shows the attempt still running (claimed, no outcome
recorded) and no completion journaled at its position.

The seed (ZENATON_CHAOS_SEED, or a random one, printed) decides the workload and the kill
moments, so a failing schedule can be replayed (timing still varies a little).

On PostgreSQL (``store_url``) several daemons can share the store (``daemons``), each from its
own copy of the project; the kills then alternate between them, each killed daemon restarted at
once (it finds its predecessor's process gone and ends its lease, so its instances are taken
over at once, by either daemon). The checks read the run log in the order it was written, so
they hold with several daemons running at once: an attempt that ran again must have been in
flight at the kill of the daemon that ran it first.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.e2e import FLOWPROJ, Daemon, project_env

SEED_VARIABLE = "ZENATON_CHAOS_SEED"

# How each kind of instance should look in its journal: position -> entry types in order.
# A task step is scheduled, fails ``k`` times (automatic retries) and completes once.
TASK = ("task_scheduled", "task_completed")

DISPATCHER = """
import json, sys, time
import boot
from zenaton.client import Client
from flowlib import chaos
Client("chaos", "token", "dev")
specs = json.load(open(sys.argv[1]))
start = time.monotonic()
for index, spec in enumerate(specs):
    due = start + spec["due"]
    if due > time.monotonic():
        time.sleep(due - time.monotonic())
    getattr(chaos, spec["kind"])(spec["key"], **spec["params"]).dispatch()
print(len(specs), "dispatched")
"""

EVENTS = """
import json, sys, time
import boot
from zenaton.client import Client
from zenaton.exceptions import UnknownInstanceError
from flowlib.chaos import ChaosWaiter, Go
Client("chaos", "token", "dev")
plan = json.load(open(sys.argv[1]))
start = time.monotonic()
sent = missed = 0
for key, at, value in sorted(plan, key=lambda p: p[1]):
    if start + at > time.monotonic():
        time.sleep(start + at - time.monotonic())
    try:
        ChaosWaiter.where_id(key).send_event(Go(value))
        sent += 1
    except UnknownInstanceError:  # not dispatched yet, or already finished: the event is not for it
        missed += 1
print(sent, "sent", missed, "missed")
"""


@dataclass(frozen=True)
class Spec:
    kind: str
    key: str
    params: dict[str, Any]


def make_workload(rng: random.Random, count: int) -> list[Spec]:
    kinds = ["ChaosSequence"] * 6 + ["ChaosFanout"] * 4 + ["ChaosWaiter"] * 4 + ["ChaosParent"] * 3 + ["ChaosRetrier"] * 3
    specs = []
    for index in range(count):
        kind = kinds[index % len(kinds)] if index < len(kinds) else rng.choice(kinds)
        key = f"{kind[5:].lower()}-{index}"
        params: dict[str, Any] = {}
        if kind in ("ChaosSequence", "ChaosFanout"):
            params = {"n": rng.randint(2, 5 if kind == "ChaosSequence" else 4), "work": round(rng.uniform(0, 0.12), 3)}
        elif kind == "ChaosWaiter":
            params = {"timeout": round(rng.uniform(0.5, 2.0), 2)}
        elif kind == "ChaosRetrier":
            params = {"failures": rng.randint(1, 2)}
        specs.append(Spec(kind, key, params))
    rng.shuffle(specs)
    return specs


def make_chaos_project(
    directory: Path, concurrency: int = 3, *, store_url: str | None = None, name: str = "chaosproj",
    daemon_settings: str = "",
) -> Path:
    root = directory / name
    shutil.copytree(FLOWPROJ, root, ignore=shutil.ignore_patterns("__pycache__"))
    store = f'\n[store]\nurl = "{store_url}"\n' if store_url else ""
    (root / "zenaton.toml").write_text(
        '[project]\nname = "chaos"\nenv = "dev"\n\n'
        f"[daemon]\nconcurrency = {concurrency}\nstop_grace = 10\nreload = false\n{daemon_settings}{store}"
    )
    return root


class StoreFiles:
    """Read-only access to the store the daemons share: the SQLite file, or a PostgreSQL database."""

    def __init__(self, db: Path, store_url: str | None) -> None:
        self.db, self.store_url = db, store_url

    def exists(self) -> bool:
        return self.store_url is not None or self.db.exists()

    def connect(self) -> Any:
        if self.store_url is None:
            return _connect(self.db)
        return _connect_postgres(self.store_url)


# -- what the store says -------------------------------------------------------------------


@dataclass
class Snapshot:
    """The store right after a kill: attempts claimed without an outcome, journaled completions,
    and how many lines the run log had then (runs written later started after the kill)."""

    running: dict[str, int] = field(default_factory=dict)  # task id -> retry index of the attempt in flight
    done: set[str] = field(default_factory=set)  # task ids whose step completed
    completed_positions: set[tuple[str, int]] = field(default_factory=set)
    log_lines: int = 0


def read_snapshot(store: StoreFiles, runlog: Path) -> Snapshot:
    if not store.exists():
        return Snapshot()
    with store.connect() as c:
        c.execute("BEGIN")  # one read transaction: a consistent view
        snap = Snapshot(log_lines=_count_lines(runlog))
        for task_id, status, retry_index in c.execute("SELECT id, status, retry_index FROM tasks"):
            if status == "running":
                snap.running[task_id] = retry_index
            elif status == "done":
                snap.done.add(task_id)
        for instance_id, position in c.execute("SELECT instance_id, position FROM journal WHERE type = 'task_completed'"):
            snap.completed_positions.add((instance_id, position))
        c.execute("COMMIT")
    return snap


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


class _connect:
    def __init__(self, db: Path) -> None:
        self.c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.c

    def __exit__(self, *exc: object) -> None:
        self.c.close()


class _connect_postgres:
    def __init__(self, url: str) -> None:
        import psycopg

        self.c = psycopg.connect(url, autocommit=True)
        self.c.execute("SET search_path = zenaton")

    def __enter__(self) -> Any:
        return self.c

    def __exit__(self, *exc: object) -> None:
        self.c.close()


def unfinished(store: StoreFiles) -> int:
    if not store.exists():
        return 1
    with store.connect() as c:
        return c.execute("SELECT count(*) FROM instances WHERE status = 'running'").fetchone()[0]


# -- the report ------------------------------------------------------------------------------


@dataclass
class Report:
    seed: int
    kills: int = 0
    instances_expected: int = 0
    instances_checked: int = 0
    steps_checked: int = 0
    runs: int = 0
    reruns_in_flight: int = 0
    lost: int = 0
    duplicate_results: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    clients: dict[str, str] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "crashes_survived": self.kills, "instances_dispatched": self.instances_expected,
            "instances_checked": self.instances_checked, "steps_checked": self.steps_checked,
            "task_runs": self.runs, "reruns_of_steps_in_flight": self.reruns_in_flight,
            "instances_lost": self.lost, "duplicate_step_results": self.duplicate_results,
            "problems": len(self.problems), "seconds": round(self.seconds, 1),
        }

    def summary(self) -> str:
        f = self.figures()
        return (
            f"crash loop (seed {f['seed']}): {f['crashes_survived']} crashes survived, "
            f"{f['instances_checked']} instances and {f['steps_checked']} steps checked "
            f"({f['task_runs']} task runs, {f['reruns_of_steps_in_flight']} re-runs of steps in flight at a kill), "
            f"{f['instances_lost']} instances lost, {f['duplicate_step_results']} duplicate step results, "
            f"{f['problems']} problems, {f['seconds']} s"
        )


# -- the loop ----------------------------------------------------------------------------------


class CrashLoop:
    def __init__(
        self, directory: Path, *, seed: int | None = None, instances: int = 40, kills: int = 6,
        delay: tuple[float, float] = (0.15, 0.9), concurrency: int = 3, log: Callable[[str], None] = print,
        store_url: str | None = None, daemons: int = 1, daemon_settings: str = "",
    ) -> None:
        env_seed = os.environ.get(SEED_VARIABLE)
        self.seed = seed if seed is not None else int(env_seed) if env_seed else random.randrange(1 << 32)
        self.rng = random.Random(self.seed)
        self.directory = directory
        if daemons > 1 and store_url is None:
            raise ValueError("several daemons share a PostgreSQL store only")
        # One copy of the project per daemon: each has its own pid lock and state directory.
        self.roots = [
            make_chaos_project(directory, concurrency, store_url=store_url, name=f"chaosproj{'' if n == 0 else n}",
                               daemon_settings=daemon_settings)
            for n in range(daemons)
        ]
        self.root = self.roots[0]
        self.db = self.root / ".zenaton" / "zenaton.db"
        self.store = StoreFiles(self.db, store_url)
        self.started = 0  # daemons started so far: the next one's epoch
        self.running: list[tuple[int, Daemon]] = []  # (epoch, daemon) of each project copy
        self.clients: dict[str, subprocess.Popen[str]] = {}
        self._up: set[int] = set()  # epochs whose "daemon started" was read
        self._began = time.monotonic()
        self.runlog = directory / "runs.log"
        self.instances = instances
        self.kills = kills
        self.delay = delay
        self.log = log
        self.specs = make_workload(self.rng, instances)
        self.snapshots: dict[int, Snapshot] = {}  # epoch e: the store right after daemon e was killed
        self.report = Report(self.seed, instances_expected=instances)

    def _daemon(self, slot: int = 0) -> tuple[int, Daemon]:
        """A new daemon in project copy ``slot``, and its epoch."""
        epoch, self.started = self.started, self.started + 1
        return epoch, Daemon(self.roots[slot], env={"CHAOS_LOG": str(self.runlog), "CHAOS_EPOCH": str(epoch)})

    def _client(self, code: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=self.root, env=project_env(self.root),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, timeout: float = 120.0) -> Report:
        """Dispatch the workload while killing the daemons on the seed's schedule; check."""
        # Schedule of the chaos: each daemon lives a random time; a few are killed while starting.
        lives = [(self.rng.uniform(*self.delay), self.rng.random() < 0.2) for _ in range(self.kills)]
        self.start_daemons()
        for other in self.running[1:]:
            self.see_started(*other)  # the first may be killed while it starts; the others are up first
        self.start_clients(spread=self.kills * sum(self.delay) / 2 * 0.8)  # during most of the chaos
        try:
            for kill, (life, during_start) in enumerate(lives):
                slot = kill % len(self.running)  # the kills alternate between the daemons
                epoch, daemon = self.running[slot]
                if not during_start:
                    self.see_started(epoch, daemon)
                pump(self.running, life if not during_start else life / 5)
                self.kill(slot)
                self.running[slot] = self._daemon(slot)
            self.finish(timeout)
        finally:
            self.clean_up()
        Checker(self).check()
        return self.report

    # -- the pieces of a run, for scenarios of their own (tests/test_postgres_daemons_e2e.py) --
    def start_daemons(self) -> None:
        self._began = time.monotonic()
        self.log(f"crash loop: seed {self.seed} (replay with {SEED_VARIABLE}={self.seed}), "
                 f"{self.instances} instances, {self.kills} kills, {len(self.roots)} daemon(s)")
        self.running = [self._daemon(slot) for slot in range(len(self.roots))]

    def see_started(self, epoch: int, daemon: Daemon) -> None:
        """Read a daemon's log up to its "daemon started" line, once."""
        if epoch not in self._up:
            if not any("daemon started" in line for line in daemon.log):  # not read by a pump already
                daemon.started()
            self._up.add(epoch)

    def start_clients(self, spread: float = 0.0) -> None:
        """The dispatcher (half the workload at once, the rest over ``spread`` seconds: its
        schedule, not a wait for work) and the event sender (each waiter gets its event a little
        after its dispatch, maybe after its timeout)."""
        specs_file, plan_file = self.directory / "specs.json", self.directory / "events.json"
        due = [0.0 if i < len(self.specs) // 2 else spread * i / len(self.specs) for i in range(len(self.specs))]
        specs_file.write_text(json.dumps([{**s.__dict__, "due": d} for s, d in zip(self.specs, due)]))
        plan = [[s.key, round(d + self.rng.uniform(0.05, 2.0), 2), f"go-{s.key}"]
                for s, d in zip(self.specs, due) if s.kind == "ChaosWaiter"]
        plan_file.write_text(json.dumps(plan))
        self.clients = {"dispatcher": self._client(DISPATCHER, str(specs_file)),
                        "events": self._client(EVENTS, str(plan_file))}

    def kill(self, slot: int) -> None:
        """SIGKILL the daemon of ``slot``, then read the store as it left it."""
        epoch, daemon = self.running[slot]
        daemon.kill9()
        self.snapshots[epoch] = read_snapshot(self.store, self.runlog)
        self.report.kills += 1

    def finish(self, timeout: float) -> None:
        """Wait for the daemons' start, the clients and every instance to finish; stop the daemons
        cleanly (a daemon stopped before it started would die of the signal, not stop)."""
        for running in self.running:
            self.see_started(*running)
        for name, client in self.clients.items():
            while client.poll() is None:
                if time.monotonic() - self._began > timeout:
                    client.kill()
                    self.report.problems.append(f"client {name} still running after {timeout} s")
                pump(self.running, 0.1)
            out, err = client.communicate()
            self.report.clients[name] = out.strip()
            if client.returncode != 0 or err.strip():
                self.report.problems.append(f"client {name} exited {client.returncode}: {err.strip()[-2000:]}")
        deadline = self._began + max(timeout, time.monotonic() - self._began + 5.0)
        while unfinished(self.store) != 0:
            if time.monotonic() > deadline:
                self.report.problems.append(f"instances still unfinished after {timeout} s")
                break
            pump(self.running, 0.25)
        for _, daemon in self.running:
            code = daemon.stop()
            if code != 0:
                self.report.problems.append(f"a last daemon exited {code}: {daemon.log[-5:]}")

    def clean_up(self) -> None:
        for client in self.clients.values():
            if client.poll() is None:
                client.kill()
                client.wait()
        for _, daemon in self.running:
            if daemon.process.poll() is None:
                daemon.kill9()
        self.report.seconds = time.monotonic() - self._began


def pump(daemons: list[tuple[int, Daemon]], seconds: float) -> None:
    """Read every daemon's log for ``seconds`` (none may block on a full pipe)."""
    if len(daemons) == 1:
        daemons[0][1].pump(seconds)
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _, daemon in daemons:
            daemon.pump(min(0.02, max(deadline - time.monotonic(), 0.0)))


# -- the checks -------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    name: str
    custom_id: str | None
    status: str
    parent_id: str | None
    error: str | None
    journal: list[tuple[str, int | None, str | None, str | None]] = field(default_factory=list)

    def result(self) -> Any:
        last = self.journal[-1] if self.journal else None
        return json.loads(last[3] or "{}").get("result") if last and last[0] == "completed" else "<not completed>"


class Checker:
    """``runs``: also check the task runs against the kills (off when a daemon was frozen rather
    than killed: its workers go on, so an attempt may run on after another daemon ran it again)."""

    def __init__(self, loop: CrashLoop, *, runs: bool = True) -> None:
        self.loop = loop
        self.check_runs = runs
        self.report = loop.report
        self.problems = loop.report.problems

    def check(self) -> None:
        rows, tasks = self._read()
        by_key: dict[tuple[str, str | None], list[Row]] = defaultdict(list)
        for row in rows.values():
            by_key[(row.name, row.custom_id)].append(row)
        expected: set[str] = set()
        for spec in self.loop.specs:
            found = by_key.get((spec.kind, spec.key), [])
            if not found:
                self.report.lost += 1
                self.problems.append(f"{spec.kind} {spec.key}: lost (no instance)")
                continue
            if len(found) > 1:
                self.problems.append(f"{spec.kind} {spec.key}: {len(found)} instances")
            row = found[0]
            expected.add(row.id)
            self._instance(spec, row)
            if spec.kind == "ChaosParent":
                for suffix in ("fire", "exec"):
                    children = by_key.get(("ChaosChild", f"{spec.key}/{suffix}"), [])
                    if len(children) != 1:
                        self.report.lost += not children
                        self.problems.append(f"child {spec.key}/{suffix}: {len(children)} instances")
                        continue
                    child = children[0]
                    expected.add(child.id)
                    if child.parent_id != row.id:
                        self.problems.append(f"child {child.custom_id}: parent {child.parent_id}, not {row.id}")
                    self._instance(Spec("ChaosChild", child.custom_id or "", {}), child)
        for row in rows.values():
            if row.id not in expected:
                self.problems.append(f"unexpected instance {row.name} {row.custom_id} {row.id}")
        if self.check_runs:
            self._runs(rows, tasks)

    def _read(self) -> tuple[dict[str, Row], dict[str, tuple[str, int, str, int, int]]]:
        with self.loop.store.connect() as c:
            rows = {r[0]: Row(*r) for r in c.execute(
                "SELECT id, name, custom_id, status, parent_id, error FROM instances")}
            for instance_id, type_, position, name, data in c.execute(
                    "SELECT instance_id, type, position, name, data FROM journal ORDER BY instance_id, seq"):
                rows[instance_id].journal.append((type_, position, name, data))
            tasks = {r[0]: r[1:] for r in c.execute(
                "SELECT id, instance_id, position, status, retry_index, attempts FROM tasks")}
        return rows, tasks

    # -- one instance's journal -----------------------------------------------------------
    def _instance(self, spec: Spec, row: Row) -> None:
        self.report.instances_checked += 1
        label = f"{spec.kind} {spec.key}"
        if row.status != "completed":
            self.problems.append(f"{label}: {row.status}, not completed (error: {row.error})")
            return
        types = [entry[0] for entry in row.journal]
        if types[0] != "started" or types[-1] != "completed" or types.count("completed") != 1:
            self.problems.append(f"{label}: journal does not run from started to one completed: {types}")
        for bad in ("error", "paused", "killed", "retried", "resumed"):
            if bad in types:
                self.problems.append(f"{label}: journal has {bad!r} entries: {types}")
        positions: dict[int, list[str]] = defaultdict(list)
        for type_, position, _, _ in row.journal:
            if position is not None:
                positions[position].append(type_)
        for position, kinds in positions.items():
            if kinds.count("task_completed") > 1:
                self.report.duplicate_results += kinds.count("task_completed") - 1
                self.problems.append(f"{label}: position {position} has {kinds.count('task_completed')} task_completed")
        want = self._expected_positions(spec)
        if sorted(positions) != sorted(want):
            self.problems.append(f"{label}: positions {sorted(positions)}, expected {sorted(want)}: {types}")
            return
        for position, shape in want.items():
            got = tuple(positions[position])
            ok = got in shape if isinstance(shape, list) else got == shape
            if not ok:
                self.problems.append(f"{label}: position {position} is {got}, expected {shape}")
            self.report.steps_checked += got.count("task_completed")
        self._result(spec, row)

    def _expected_positions(self, spec: Spec) -> dict[int, Any]:
        p = spec.params
        if spec.kind == "ChaosSequence":
            return {i: TASK for i in range(1, p["n"] + 1)}
        if spec.kind == "ChaosFanout":
            return {i: TASK for i in range(1, p["n"] + 2)}
        if spec.kind == "ChaosWaiter":
            return {1: TASK, 2: [("wait_started",), ("wait_started", "timer_fired")], 3: TASK}
        if spec.kind == "ChaosParent":
            return {1: ("dispatched",), 2: ("dispatched", "child_completed"), 3: TASK}
        if spec.kind == "ChaosRetrier":
            return {1: ("task_scheduled",) + ("task_failed",) * p["failures"] + ("task_completed",)}
        return {1: TASK}  # ChaosChild

    def _result(self, spec: Spec, row: Row) -> None:
        result, key, p = row.result(), spec.key, spec.params
        if spec.kind == "ChaosSequence":
            want: Any = [f"{key}/{i}" for i in range(p["n"])]
        elif spec.kind == "ChaosFanout":
            want = [f"{key}/{i}" for i in range(p["n"])] + [f"{key}/sum"]
        elif spec.kind == "ChaosParent":
            want = f"{key}/exec/only"
        elif spec.kind == "ChaosRetrier":
            want = f"{key}/flaky"
        elif spec.kind == "ChaosChild":
            want = f"{key}/only"
        else:  # the first Go received after the wait started, unless the timer fired first
            want, waiting = None, False
            for type_, position, name, data in row.journal:
                if type_ == "wait_started":
                    waiting = True
                elif type_ == "timer_fired" and waiting:
                    break
                elif type_ == "event_received" and waiting and name == "Go":
                    want = json.loads(data or "{}").get("v", {}).get("value")
                    break
        if result != want:
            self.problems.append(f"{spec.kind} {key}: result {result!r}, its journal implies {want!r}")

    # -- side effects against the journal ---------------------------------------------------
    def _runs(self, rows: dict[str, Row], tasks: dict[str, tuple[str, int, str, int, int]]) -> None:
        # task id -> [(retry index, epoch, line number)], in the order the runs started
        runs: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        lines = self.loop.runlog.read_text().splitlines() if self.loop.runlog.exists() else []
        for number, line in enumerate(lines):
            _, run_task, run_retry, run_epoch, _label = line.split(" ", 4)
            runs[run_task].append((int(run_retry), int(run_epoch), number))
        self.report.runs = len(lines)
        kills = self.report.kills
        for task_id in runs.keys() - tasks.keys():
            self.problems.append(f"a run of task {task_id}, which the store does not know")
        for task_id, (instance_id, position, status, _retry, attempts) in tasks.items():
            label = f"task {task_id[:8]} of {rows[instance_id].name} {rows[instance_id].custom_id} (position {position})"
            mine = runs.get(task_id, [])
            if status != "done":
                self.problems.append(f"{label}: status {status}")
            if not mine:
                self.problems.append(f"{label}: never ran")
                continue
            if len(mine) > attempts:
                self.problems.append(f"{label}: ran {len(mine)} times, {attempts} attempts claimed")
            for retry_index, epochs in _group(mine).items():
                if len(epochs) > 1 + kills:
                    self.problems.append(f"{label}: attempt {retry_index} ran {len(epochs)} times with {kills} kills")
                if len(set(epochs)) != len(epochs):
                    self.report.duplicate_results += 1
                    self.problems.append(f"{label}: attempt {retry_index} ran twice under one daemon: epochs {epochs}")
                for epoch in epochs[:-1]:  # every run but the last was cut short by the kill of its daemon
                    self.report.reruns_in_flight += 1
                    at_kill = self.loop.snapshots.get(epoch)
                    if (at_kill is None or at_kill.running.get(task_id) != retry_index
                            or (instance_id, position) in at_kill.completed_positions):
                        self.report.duplicate_results += 1
                        self.problems.append(
                            f"{label}: attempt {retry_index} ran again after epoch {epoch}, although it was not in "
                            f"flight at that kill")
            for epoch, snap in self.loop.snapshots.items():
                later = [e for _, e, number in mine if number >= snap.log_lines]
                if task_id in snap.done and later:
                    self.report.duplicate_results += 1
                    self.problems.append(f"{label}: completed before kill {epoch}, ran again in epochs {later}")


def _group(runs: list[tuple[int, int, int]]) -> dict[int, list[int]]:
    """Each attempt's epochs, in the order its runs started."""
    grouped: dict[int, list[int]] = defaultdict(list)
    for retry_index, epoch, _ in runs:
        grouped[retry_index].append(epoch)
    return grouped


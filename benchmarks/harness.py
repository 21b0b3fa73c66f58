"""A real daemon subprocess in a copy of benchmarks/project, and read-only looks at its store.

The daemon scenarios run `zenaton start --no-reload` in a temporary project directory, as a
user would, and detect progress by polling the SQLite store with plain read-only queries.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

PROJECT = Path(__file__).parent / "project"
BIN = Path(sys.executable).parent
ZENATON = str(BIN / "zenaton")
POLL = 0.02  # seconds between looks at the store
MIB = 1024 * 1024


def make_project(directory: Path, name: str, durability: str, concurrency: int) -> Path:
    """A copy of benchmarks/project with its own zenaton.toml and store."""
    root = directory / name
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "zenaton.toml").write_text(
        f'[project]\nname = "bench-{name}"\nenv = "bench"\nboot = "boot.py"\n\n'
        f'[store]\ndurability = "{durability}"\n\n'
        f"[daemon]\nconcurrency = {concurrency}\nreload = false\n"
    )
    return root


def store_path(root: Path) -> Path:
    return root / ".zenaton" / "zenaton.db"


def print_results(results: dict[str, Any], path: Path | None) -> None:
    """Print a benchmark's figures as JSON, and write them to ``path`` too when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of these runs, the median of its values (nested as the runs are)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_run([run[key] for run in runs]) for key in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return round(statistics.median(runs), 3)  # type: ignore[arg-type, return-value]
    return first  # type: ignore[return-value]


def project_env() -> dict[str, str]:
    """The environment of the commands a benchmark runs, as a user's shell has it: no app
    credentials, and bytecode written and read (PYTHONDONTWRITEBYTECODE, which some machines
    set, would make every command compile its modules again: a tenth of a second or more)."""
    env = dict(os.environ)
    for name in ("ZENATON_APP_ENV", "ZENATON_APP_ID", "ZENATON_API_TOKEN", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def proc_status(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` figure in MiB (VmHWM: peak resident set, VmRSS: now)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MIB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """`zenaton start --no-reload` in ``root``; its log goes to a file (never a full pipe)."""

    _count = 0

    def __init__(self, root: Path) -> None:
        Daemon._count += 1
        self.root = root
        self.log_path = root / f"daemon-{Daemon._count}.log"
        self._log = open(self.log_path, "wb")
        self.started_wall = time.time()
        self._started = time.perf_counter()
        self.process = subprocess.Popen(
            [ZENATON, "start", "--no-reload"],
            cwd=root,
            env=project_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def wait_started(self, timeout: float = 60.0) -> float:
        """Seconds from Popen until the daemon logged that it started."""
        deadline = time.monotonic() + timeout
        while "daemon started" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start (exit {self.process.poll()}):\n{self.log()[-3000:]}")
            time.sleep(0.01)
        return time.perf_counter() - self._started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def peak_rss_mib(self) -> float:
        return proc_status(self.pid, "VmHWM")

    def rss_mib(self) -> float:
        return proc_status(self.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 120.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
        return self.process.returncode


class StoreView:
    """Read-only queries on a project's store (a fresh read transaction for every query)."""

    def __init__(self, root: Path) -> None:
        self.path = store_path(root)
        self._conn: sqlite3.Connection | None = None

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self._conn is None:
            if not self.path.exists():
                return None
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30)
        return self._conn.execute(sql, params).fetchall()[0][0]

    def completed(self) -> int:
        return self.scalar("SELECT count(*) FROM instances WHERE status = 'completed'") or 0

    def settled(self, count: int) -> bool:
        """At least ``count`` instances, and the daemon has handled every one (none is ready)."""
        total = self.scalar("SELECT count(*) FROM instances") or 0
        return total >= count and self.scalar("SELECT count(*) FROM instances WHERE ready = 1") == 0

    def counts(self) -> dict[str, int]:
        if self._conn is None:
            return {}
        return dict(self._conn.execute("SELECT status, count(*) FROM instances GROUP BY status").fetchall())

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str, daemon: Daemon | None = None) -> float:
        """Poll until ``predicate()``; returns the wall time (time.time()) it was first seen true."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if daemon is not None and daemon.process.poll() is not None:
                code = daemon.process.returncode
                raise RuntimeError(f"the daemon exited ({code}) before {what}:\n{daemon.log()[-3000:]}")
            if time.monotonic() > deadline:
                log = daemon.log()[-3000:] if daemon else ""
                raise RuntimeError(f"not {what} after {timeout:.0f} s: {self.counts()}\n{log}")
            time.sleep(POLL)
        return time.time()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def client(root: Path, *args: str, timeout: float = 900.0) -> dict[str, Any]:
    """Run benchclient.py in the project; its JSON report."""
    result = subprocess.run(
        [sys.executable, "benchclient.py", *args],
        cwd=root,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return _report(result.returncode, result.stdout, result.stderr, args)


def start_client(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "benchclient.py", *args],
        cwd=root,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_client(process: subprocess.Popen[str], timeout: float = 900.0) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    return _report(process.returncode, out, err, process.args)


def _report(code: int, out: str, err: str, args: Any) -> dict[str, Any]:
    if code != 0:
        raise RuntimeError(f"benchclient {args} exited {code}:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def wall_time(command: list[str], cwd: Path, repeats: int) -> dict[str, float]:
    """Median and best wall time of a command (its output captured, as if piped)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=project_env(), capture_output=True, timeout=600)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{command} exited {result.returncode}: {error}")
    return {"median_s": round(statistics.median(times), 3), "best_s": round(min(times), 3), "runs": repeats}

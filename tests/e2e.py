"""Helpers for end-to-end tests: a copy of the test project and a real daemon subprocess.

Waiting is event-driven: on the daemon's log pipe and on a FIFO the test tasks
write to when they start, never on sleeps.
"""
from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

FLOWPROJ = Path(__file__).parent / "fixtures" / "flowproj"
ZENATON = str(Path(sys.executable).parent / "zenaton")


def make_project(tmp_path: Path, *, concurrency: int = 2, grace: float = 10.0, store_url: str | None = None) -> Path:
    """A copy of the test project; ``store_url`` (default: the project's SQLite file) goes in zenaton.toml."""
    root = tmp_path / "proj"
    shutil.copytree(FLOWPROJ, root, ignore=shutil.ignore_patterns("__pycache__"))
    store = f'\n[store]\nurl = "{store_url}"\n' if store_url else ""
    (root / "zenaton.toml").write_text(
        f'[project]\nname = "e2e"\nenv = "dev"\n\n[daemon]\nconcurrency = {concurrency}\nstop_grace = {grace}\n{store}'
    )
    (root / "gates").mkdir()
    return root


def project_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FLOW_LOG=str(root / "flow.log"), FLOW_GATES=str(root / "gates"), FLOW_SIGNAL=str(root / "signal"))
    env.pop("ZENATON_APP_ENV", None)
    env.pop("ZENATON_STORE_URL", None)
    return env


def zenaton(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([ZENATON, *args], cwd=root, env=project_env(root), capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"zenaton {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run a plain script in the project directory, as a user would."""
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=project_env(root), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


class Signals:
    """Lines the test tasks write to the FIFO $FLOW_SIGNAL."""

    def __init__(self, root: Path) -> None:
        path = root / "signal"
        os.mkfifo(path)
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY)  # so the reader never sees EOF between writers
        self._buffer = b""

    def expect(self, line: str, timeout: float = 30.0) -> None:
        """Wait for exactly this line (consumed)."""
        self._take(lambda candidate: candidate == line, repr(line), timeout)

    def expect_prefix(self, prefix: str, timeout: float = 30.0) -> str:
        """The first whole line starting with ``prefix`` (consumed)."""
        return self._take(lambda candidate: candidate.startswith(prefix), f"starting {prefix!r}", timeout)

    def _take(self, wanted: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self._buffer.decode(errors="replace").split("\n")[:-1]:
                if wanted(line):
                    self._buffer = self._buffer.replace(f"{line}\n".encode(), b"", 1)
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no signal {what} within {timeout} s (got {self._buffer!r})")
            with selectors.DefaultSelector() as selector:
                selector.register(self._read, selectors.EVENT_READ)
                if selector.select(remaining):
                    self._buffer += os.read(self._read, 4096)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)


class Daemon:
    """`zenaton start` as a subprocess; its log is read line by line as it comes."""

    def __init__(self, root: Path, *args: str, command: str = "start", env: dict[str, str] | None = None) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [ZENATON, command, *args], cwd=root, env={**project_env(root), **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self.log: list[str] = []  # everything it printed, for assertions and failure messages
        self._pending = b""
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def expect(self, pattern: str, timeout: float = 30.0) -> str:
        """The first log line (from now on) matching the regex ``pattern``."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            for index, line in enumerate(self.lines):
                if regex.search(line):
                    del self.lines[: index + 1]
                    return line
            self.lines.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read_line(remaining):
                log = "\n".join(self.log[-30:])
                raise AssertionError(f"daemon log has no line matching {pattern!r} (exit {self.process.poll()}):\n{log}")

    def pump(self, seconds: float) -> None:
        """Read the log for ``seconds`` (so a chatty daemon never blocks on a full pipe)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._read_line(remaining) and self.process.poll() is not None:
                time.sleep(remaining)  # it exited: nothing more to read
        self.lines.clear()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        """Until ``condition()`` holds, checked again whenever the daemon logs something
        (and at least every 0.25 s, since a line may precede the commit it announces)."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                log = "\n".join(self.log[-30:])
                raise AssertionError(f"{what} not reached within {timeout} s (daemon exit {self.process.poll()}):\n{log}")
            self._read_line(min(remaining, 0.25))
            self.lines.clear()

    def _read_line(self, timeout: float) -> bool:
        if not self._selector.select(timeout):
            return False
        chunk = os.read(self._fd, 65536)
        if not chunk:
            return False
        self._pending += chunk
        *complete, self._pending = self._pending.split(b"\n")
        for raw in complete:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            self.log.append(line)
        return True

    def started(self) -> Daemon:
        self.expect("daemon started")
        return self

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._selector.close()

    def stop(self, timeout: float = 30.0) -> int:
        self.process.terminate()
        rest, _ = self.process.communicate(timeout=timeout)
        self.log.extend((self._pending + rest).decode(errors="replace").splitlines())
        self._selector.close()
        return self.process.returncode

"""The pool's side of a worker process: how to start one (``Launcher``), and its pipes, queue of
attempts and deadline (``WorkerProcess``).

The process itself runs ``zenaton_runtime.pool.worker``; see that module for the line protocol.
What placement reads of a worker (its queue, readiness, generation, start time, bytes in its
pipe) is the ``Lane`` it extends (``zenaton_runtime.pool.placement``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from zenaton_runtime.pool.attempts import Attempt, Outcome
from zenaton_runtime.pool.placement import Lane
from zenaton_runtime.pool.worker import STORE_VARIABLE, read_tail


class Launcher:
    """How the pool starts its workers: their command line, environment, directory, and the
    snapshot of the project's code they import (a file per generation, in a private directory)."""

    def __init__(
        self, *, root: str, store_url: str, boot: str | None, module: str | None, env: dict[str, str] | None
    ) -> None:
        self.root = root
        self.args = ["--root", root, "--parent", str(os.getpid())]
        if module:
            self.args += ["--module", module]
        elif boot:
            self.args += ["--boot", boot]
        # In the environment, not on the command line: `ps` shows every user the command line.
        self.env = {**os.environ, **(env or {}), STORE_VARIABLE: store_url}
        self.tmp = tempfile.mkdtemp(prefix="zenaton-pool-")
        self._sources: list[str] = []

    def load(self, project: Any, generation: int) -> list[str]:
        """Start workers on the ``generation`` of the code, ``project``'s snapshot of it (if it has
        one) from now on. The new snapshot is written before anything changes (a failed write
        leaves the pool as it was); returns the previous one's arguments, for ``discard`` once no
        worker still loading needs them."""
        sources: list[str] = []
        snapshot = getattr(project, "snapshot", None)
        if snapshot is not None:
            path = Path(self.tmp) / f"sources-{generation}.json"
            snapshot.write(path)
            sources = ["--sources", str(path)]
        previous, self._sources = self._sources, sources
        return previous

    @staticmethod
    def discard(previous: list[str]) -> None:
        """Delete a snapshot ``load`` replaced."""
        if previous:
            Path(previous[1]).unlink(missing_ok=True)

    def start(self, generation: int) -> WorkerProcess:
        return WorkerProcess.start(
            self.args + self._sources, tmp=self.tmp, cwd=self.root, env=self.env, generation=generation
        )

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerProcess(Lane):
    """The pool's handle on one worker process: its pipes, its queue of attempts and the deadline
    of the one running.

    Attempts are written to the worker as soon as they are assigned (it runs them in order),
    so a busy worker can have the next ones waiting in its pipe: fewer round trips when many
    tasks are ready. Only the head of the queue is running; its clock starts when the one
    before it has reported.
    """

    def __init__(self, proc: subprocess.Popen[bytes], capture_dir: str, stderr_file: BinaryIO) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        super().__init__()  # the Lane: an empty queue, not ready, generation 0, nothing started
        self.proc = proc
        self.pid = proc.pid
        self.capture_dir = capture_dir
        self.stdout_fd = proc.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.pidfd = _pidfd_open(proc.pid)  # readable once the process exits: no polling for deaths
        self._stderr = stderr_file
        self._buffer = bytearray()
        self.sent = 0  # how many of the queue are written to the worker
        self.deadline: float | None = None  # monotonic, of the head (started_at: its wall clock start)

    @classmethod
    def start(cls, args: list[str], *, tmp: str, cwd: str, env: dict[str, str], generation: int) -> WorkerProcess:
        """Start ``python -m zenaton_runtime.pool.worker ARGS``, its capture files in a new
        directory under ``tmp``, to run the ``generation`` of the project's code ``args`` name."""
        capture_dir = tempfile.mkdtemp(prefix="worker-", dir=tmp)
        command = [sys.executable, "-u", "-m", "zenaton_runtime.pool.worker", *args, "--capture-dir", capture_dir]
        stderr_file = tempfile.TemporaryFile()  # noqa: SIM115  # the worker's own start-up noise; closed in close()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            cwd=cwd,
            env=env,
            bufsize=0,
            start_new_session=True,  # Ctrl-C on the daemon must not hit tasks; kill the group on timeout
        )
        worker = cls(proc, capture_dir, stderr_file)
        worker.generation = generation
        return worker

    @property
    def attempt(self) -> Attempt | None:
        """The attempt running (or about to), if any."""
        return self.queue[0] if self.queue else None

    def send_pending(self) -> None:
        if self.ready and self.sent < len(self.queue):
            self._flush()

    def abandon_pending(self) -> list[Attempt]:
        """Take back the attempts not written to the worker yet (it was still loading)."""
        pending = list(self.queue)[self.sent :]
        self.unsent_bytes = 0
        for _ in pending:
            self.queue.pop()
        return pending

    def take_waiting(self) -> list[Attempt]:
        """Take back the attempts queued behind the head (never started), e.g. when it dies."""
        waiting = list(self.queue)[1:]
        for _ in waiting:
            self.queue.pop()
        self.sent = min(self.sent, len(self.queue))
        self.waiting_bytes = self.unsent_bytes = 0
        return waiting

    def finish(self) -> None:
        """The head reported: the next attempt in the queue starts now."""
        if self.queue:
            self.queue.popleft()
            self.sent -= 1
        self.started_at, self.deadline = None, None
        if self.queue and self.sent:
            self.waiting_bytes = max(0, self.waiting_bytes - len(self.queue[0].data))
            self._start_head()
        elif self.queue:  # the new head was never written: it no longer counts as waiting
            self.unsent_bytes = max(0, self.unsent_bytes - len(self.queue[0].data))

    def _start_head(self) -> None:
        self.started_at = time.time()
        max_time = self.queue[0].max_time
        self.deadline = time.monotonic() + max_time if max_time is not None and max_time > 0 else None

    def _flush(self) -> None:
        """Write every attempt not sent yet, in one write."""
        assert self.proc.stdin is not None
        lines = []
        while self.sent < len(self.queue):
            attempt = self.queue[self.sent]
            self.sent += 1
            if self.sent == 1:
                self._start_head()
            else:
                self.waiting_bytes += len(attempt.data)
            lines.append(attempt.to_json())
        self.unsent_bytes = 0
        view = memoryview(("\n".join(lines) + "\n").encode())
        try:
            while view:
                written = self.proc.stdin.write(view)
                if not written:
                    break
                view = view[written:]
        except OSError:
            pass  # the worker is gone; its EOF and exit are reported by the pool's poll

    def read_messages(self) -> tuple[list[dict[str, Any]], bool]:
        """Complete protocol lines available now, and whether the pipe reached EOF.

        Raises ValueError for a line that is not JSON."""
        eof = False
        while True:
            try:
                chunk = os.read(self.stdout_fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            self._buffer += chunk
        *lines, rest = self._buffer.split(b"\n")
        self._buffer = bytearray(rest)
        return [json.loads(line) for line in lines if line.strip()], eof

    def last_outcomes(self) -> list[Outcome]:
        """The outcomes a dead (or doomed) worker wrote before it went: each finishes its head."""
        try:
            messages, _ = self.read_messages()
        except ValueError:
            return []
        outcomes = []
        for message in messages:
            if "outcome" in message:
                try:
                    outcomes.append(Outcome.from_list(message["outcome"]))
                    self.finish()
                except TypeError:
                    pass
        return outcomes

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL the worker and whatever the task started in its process group."""
        if self.proc.returncode is not None:
            return  # reaped: its pid, and so the group id, may belong to someone else now
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def close_stdin(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass

    def captured_output(self) -> tuple[str, str]:
        """What the current attempt wrote so far (for timeouts and crashes)."""
        texts = []
        for name in ("stdout", "stderr"):
            try:
                fd = os.open(os.path.join(self.capture_dir, name), os.O_RDONLY)
            except OSError:
                texts.append("")
                continue
            try:
                texts.append(read_tail(fd))
            finally:
                os.close(fd)
        return texts[0], texts[1]

    def stderr_tail(self, limit: int = 8192) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode("utf-8", errors="replace")

    def dispose(self, wait: float) -> None:
        """SIGKILL the worker if it still runs, reap it (``wait``: seconds to wait for that), release
        its pipes and capture files."""
        self.kill()
        self.wait_exit(wait)
        self.close()
        shutil.rmtree(self.capture_dir, ignore_errors=True)

    def close(self) -> None:
        self.close_stdin()
        for stream in (self.proc.stdout, self._stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _pidfd_open(pid: int) -> int | None:
    """A descriptor readable once ``pid`` exits (Linux 5.3+); None where there is none."""
    opener: Callable[[int], int] | None = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running; killed"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"

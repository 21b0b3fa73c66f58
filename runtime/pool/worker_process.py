"""The pool's side of a worker process: its pipes, its queue of attempts, its deadline.

The process itself runs ``zenaton_runtime.pool.worker``; see that module for the line protocol.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import tempfile
import time
from typing import Any, BinaryIO

from zenaton_runtime.pool.attempts import Attempt
from zenaton_runtime.pool.worker import read_tail

PIPELINE_BYTES = 32 * 1024  # attempts waiting in a worker's pipe: well under the pipe's buffer


class WorkerProcess:
    """The pool's handle on one worker process: its pipes, its queue of attempts and the deadline
    of the one running.

    Attempts are written to the worker as soon as they are assigned (it runs them in order),
    so a busy worker can have the next ones waiting in its pipe: fewer round trips when many
    tasks are ready. Only the head of the queue is running; its clock starts when the one
    before it has reported.
    """

    def __init__(self, proc: subprocess.Popen[bytes], capture_dir: str, stderr_file: BinaryIO) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.pid = proc.pid
        self.capture_dir = capture_dir
        self.stdout_fd = proc.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.pidfd = _pidfd_open(proc.pid)  # readable once the process exits: no polling for deaths
        self._stderr = stderr_file
        self._buffer = bytearray()
        self.ready = False  # the project is loaded
        self.generation = 0  # which version of the project's code it loaded (pool.recycle)
        self.queue: collections.deque[Attempt] = collections.deque()  # the head runs, the rest wait
        self.sent = 0  # how many of the queue are written to the worker
        self.waiting_bytes = 0  # size of the lines written but not yet running
        self.unsent_bytes = 0  # size of the attempts assigned but not yet written
        self.started_at: float | None = None  # of the head; None until it is sent
        self.deadline: float | None = None  # monotonic, of the head

    @classmethod
    def start(cls, command: list[str], *, cwd: str, env: dict[str, str], capture_dir: str) -> WorkerProcess:
        stderr_file = tempfile.TemporaryFile()  # only the worker's own start-up noise lands here
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
        return cls(proc, capture_dir, stderr_file)

    @property
    def attempt(self) -> Attempt | None:
        """The attempt running (or about to), if any."""
        return self.queue[0] if self.queue else None

    def can_queue(self, attempt: Attempt, depth: int) -> bool:
        """Room for ``attempt`` behind the current one, without risking a blocking write."""
        if not self.ready or len(self.queue) >= depth:
            return False
        return self.waiting_bytes + self.unsent_bytes + len(attempt.data) < PIPELINE_BYTES

    def assign(self, attempt: Attempt) -> None:
        """Queue ``attempt``; ``send_pending`` writes it to the worker."""
        self.queue.append(attempt)
        if self.queue[0] is not attempt:  # the head's size never counts: it is the one running
            self.unsent_bytes += len(attempt.data)

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
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined]  # Linux 5.3+
    except (AttributeError, OSError):
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

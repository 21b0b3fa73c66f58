"""A task worker process: ``python -m zenaton_runtime.pool.worker --root DIR [--boot F | --module M]``, the
store's url in ``$ZENATON_WORKER_STORE`` (or ``--store URL``).

Protocol with ``zenaton_runtime.pool.worker_pool``, one JSON value per line:

- stdin: one ``Attempt`` per line (``Attempt.to_json``: its fields as an array); EOF means exit.
- protocol channel (a private copy of the original stdout): ``{"ready": pid}`` once the
  project is loaded, then ``{"outcome": [...]}`` per attempt (``Outcome.to_list``); or ``{"fatal": message}``
  followed by exit status 1 if the project cannot be loaded.

File descriptors 0, 1 and 2 are taken away from the protocol: 0 reads /dev/null, 1 and 2
point at two capture files each attempt starts empty, so output written
by C code and child processes is captured as well as ``print``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from zenaton_runtime.pool.attempts import COMPACT_JSON, OUTPUT_LIMIT, Attempt, Outcome, run_attempt


class Channel:
    """The line-oriented pipe to the pool, on file descriptors user code does not know."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in: BinaryIO = os.fdopen(in_fd, "rb")
        self._out_fd = out_fd

    def read(self) -> bytes:
        return self._in.readline()

    def send(self, message: dict[str, Any]) -> None:
        data = (COMPACT_JSON(message) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._out_fd, view) :]


class Capture:
    """Points fds 1 and 2 at two capture files for the worker's whole life; each attempt finds
    them empty (whatever was written since the last one, by a thread or a child process it left
    behind, is dropped). Only a file something was written to is read back or emptied."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        self._files = [os.open(directory / name, flags, 0o600) for name in ("stdout", "stderr")]
        _flush_python_streams()
        for target, fd in zip((1, 2), self._files, strict=True):
            os.dup2(fd, target)

    def start(self) -> None:
        _flush_python_streams()
        for fd in self._files:
            if os.fstat(fd).st_size:
                os.ftruncate(fd, 0)

    def stop(self) -> tuple[str, str]:
        _flush_python_streams()
        texts = []
        for fd in self._files:
            size = os.fstat(fd).st_size
            texts.append(read_tail(fd, size=size) if size else "")
        return texts[0], texts[1]


def read_tail(fd: int, limit: int = OUTPUT_LIMIT, size: int | None = None) -> str:
    """The last ``limit`` bytes of an open file, decoded leniently."""
    if size is None:
        size = os.fstat(fd).st_size
    data = os.pread(fd, limit, max(0, size - limit))
    return data.decode("utf-8", errors="replace")


class LazyRuntime:
    """Builds the task runtime on first use, so tasks that never touch the SDK runtime
    neither pay for a store connection nor fail when it cannot be built."""

    def __init__(self, project: Any, store_url: str, env: str) -> None:
        self._args = (project, store_url, env)
        self._runtime: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._runtime is None:
            from zenaton_runtime.client.control import (
                task_runtime,
            )  # lazy: written alongside; a failure fails the attempt

            self._runtime = task_runtime(*self._args)
        return getattr(self._runtime, name)


class Worker:
    def __init__(self, project: Any, store_url: str, channel: Channel, capture: Capture) -> None:
        self.project = project
        self.store_url = store_url
        self.channel = channel
        self.capture = capture
        self._runtimes: dict[str, LazyRuntime] = {}

    def runtime_for(self, env: str) -> LazyRuntime:
        if env not in self._runtimes:
            self._runtimes[env] = LazyRuntime(self.project, self.store_url, env)
        return self._runtimes[env]

    def serve(self) -> None:
        while line := self.channel.read():
            if line.strip():
                outcome = self.run(Attempt.from_json(line))
                self.channel.send({"outcome": outcome.to_list()})

    def run(self, attempt: Attempt) -> Outcome:
        self.capture.start()
        try:
            outcome = run_attempt(self.project, attempt, make_runtime=self.runtime_for, capture=False)
        finally:
            stdout, stderr = self.capture.stop()
        return outcome.with_output(stdout, stderr)


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


PR_SET_PDEATHSIG = 1
STORE_VARIABLE = "ZENATON_WORKER_STORE"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m zenaton_runtime.pool.worker")
    parser.add_argument("--root", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--boot")
    group.add_argument("--module")
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_VARIABLE),
        help=f"the store's url (default: ${STORE_VARIABLE}, where the daemon puts it: off the command line)",
    )
    parser.add_argument("--capture-dir", help="where the attempt's output files live (default: a new temp dir)")
    parser.add_argument("--parent", type=int, default=None, help="the daemon's pid: die with it")
    parser.add_argument("--sources", help="the daemon's source snapshot: import the project from it, not from disk")
    args = parser.parse_args(argv)
    if not args.store:
        parser.error(f"the store's url is needed: --store URL or ${STORE_VARIABLE}")
    return args


def _take_protocol_fds() -> Channel:
    """Keep private copies of stdin/stdout for the protocol; leave /dev/null in their place
    (until the capture files take fds 1 and 2)."""
    _flush_python_streams()
    channel = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return channel


def _die_with(parent: int | None) -> None:
    """Ask Linux to SIGKILL this worker when the daemon dies, even by kill -9: a restarted
    daemon runs the interrupted attempt again, and the old one must not run beside it."""
    if parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: stdin's EOF still ends an idle worker
        return
    if os.getppid() != parent:  # the daemon died before the request took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _die_with(args.parent)
    channel = _take_protocol_fds()
    try:
        from zenaton_runtime.project.loader import SourceSnapshot, load_project

        root = Path(args.root)
        snapshot = SourceSnapshot.read(Path(args.sources), root) if args.sources else None
        project = load_project(root, boot=args.boot or "boot.py", module=args.module, snapshot=snapshot)
    except BaseException as error:  # anything the project's import does must be reported, not lost
        channel.send({"fatal": _describe_load_failure(error)})
        return 1
    capture_dir = Path(args.capture_dir) if args.capture_dir else Path(tempfile.mkdtemp(prefix="zenaton-worker-"))
    worker = Worker(project, args.store, channel, Capture(capture_dir))
    channel.send({"ready": os.getpid()})
    try:
        worker.serve()
    except BrokenPipeError:  # the pool went away
        return 0
    return 0


def _describe_load_failure(error: BaseException) -> str:
    from zenaton_runtime.errors import ZenatonError

    if isinstance(error, ZenatonError):
        return f"cannot load the project: {error}"
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"cannot load the project: {type(error).__name__}: {error}\n{trace}"


if __name__ == "__main__":
    sys.exit(main())

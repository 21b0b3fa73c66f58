"""The daemon's pid lock: one daemon per SQLite store (on PostgreSQL, per project copy: several
daemons share one database through leases), and who holds it (for status and stop).

An flock on a file beside the store, or in the project's .zenaton/: the kernel releases it even
after kill -9.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from zenaton_runtime.errors import DaemonError
from zenaton_runtime.project.config import Config


@dataclass(frozen=True)
class DaemonInfo:
    pid: int
    started_at: float
    store: str


def lock_path(config: Config) -> Path:
    """One lock per store: beside the SQLite file, or in the project's .zenaton/ otherwise."""
    prefix = "sqlite:///"
    if config.store_url.startswith(prefix):
        return Path(config.store_url[len(prefix) :] + ".daemon.lock")
    return config.state_dir / "daemon.lock"


class PidLock:
    """An flock on the store's lock file: released by the kernel even after kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, store_url: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = read_info(self.path)
            pid = info.pid if info else "unknown"
            raise DaemonError(f"a daemon is already running on this store (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started_at": time.time(), "store": store_url}).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def read_info(path: Path) -> DaemonInfo | None:
    """The running daemon's pid and start time, or None when no daemon holds the lock."""
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text() or "{}"
            data = json.loads(text) if text.strip() else {}
            return DaemonInfo(int(data.get("pid", 0)), float(data.get("started_at", 0)), str(data.get("store", "")))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

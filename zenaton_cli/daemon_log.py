"""The daemon's log: plain lines (the default) or one JSON object a line, on stderr or in a file
rotated by size.

Lines are gathered while an engine step runs and written in one go when it ends (``flush``):
rich's rendering, or a write per line, would cost more than a step. A line about an instance is a
``LogLine``, which carries its event, level, instance id, name and position for the JSON form.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

FORMATS = ("plain", "json")
MAX_BYTES = 10 * 1024 * 1024  # default size of a log file before it is rotated
BACKUPS = 5  # default number of rotated files kept


class StepLog:
    """What the daemon logs, as ``format`` says, to stderr or to ``file`` (rotated by size)."""

    def __init__(
        self, format: str = "plain", file: Path | None = None, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"log format {format!r}: one of {', '.join(FORMATS)}")
        self.format = format
        self._lines: list[str] = []
        self._lock = threading.Lock()  # the file watcher logs from its own thread
        self._second = -1
        self._stamp = ""
        self._file: logging.Handler | None = None
        if file is not None:
            import logging.handlers  # only with a file: the CLI starts without logging

            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = logging.handlers.RotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
            self._file.setFormatter(logging.Formatter("%(message)s"))

    def __call__(self, message: str) -> None:
        if self.format == "json":
            line = json.dumps(record(message, time.time()), ensure_ascii=False) + "\n"
            with self._lock:
                self._lines.append(line)
            return
        now = int(time.time())
        with self._lock:
            if now != self._second:
                self._second, self._stamp = now, time.strftime("%H:%M:%S", time.localtime(now))
            self._lines.append(f"{self._stamp} {message}\n")

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines:
            return
        if self._file is not None:  # one record for the step's lines: rotation happens between steps
            import logging

            self._file.emit(logging.makeLogRecord({"msg": "".join(lines).rstrip("\n")}))
            return
        sys.stderr.write("".join(lines))
        sys.stderr.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()


def record(message: str, at: float) -> dict[str, Any]:
    """A log line as JSON: time, level, event, instance id, name, position and message."""
    return {
        "time": dt.datetime.fromtimestamp(at, dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": getattr(message, "level", "info"),
        "event": getattr(message, "event", "daemon"),
        "instance_id": getattr(message, "instance_id", None),
        "name": getattr(message, "name", None),
        "position": getattr(message, "position", None),
        "message": getattr(message, "message", str(message)),
    }

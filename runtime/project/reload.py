"""Hot reload: watch the project's files and load the new code between two engine steps.

The watchdog thread only takes note of changed paths and wakes the daemon loop through a
pipe; everything else happens in the loop, between two steps, where nothing is being
decided. A change is acted on once the files have been quiet for ``DEBOUNCE`` seconds.

Reloading: every changed file must compile, or the reload is skipped and the previous
code keeps running; then the project is imported again (``loader.reload_project``, which
puts the previous modules back if that fails); the engine takes the new project and
drops its suspended runs, so each instance continues by replay on the new code at its
next step; the task pool replaces its workers as soon as their current attempts are done.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from zenaton_runtime.errors import ConfigError
from zenaton_runtime.project.loader import reload_project

# watchdog reports through `logging`; with no handler configured, Python prints its records on
# stderr, e.g. the benign "queue_events() called when the thread is inactive" of a stopping
# observer. The daemon logs what matters to its users itself.
logging.getLogger("watchdog").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from zenaton_runtime.engine.engine import Engine
    from zenaton_runtime.pool.worker_pool import WorkerPool
    from zenaton_runtime.project.config import Config

__all__ = ["DEBOUNCE", "Debounce", "HotReload", "Watcher", "is_watched", "syntax_error"]

DEBOUNCE = 0.3  # seconds of quiet after the last change before reloading
IGNORED_DIRS = frozenset({"__pycache__", "site-packages", "node_modules"})
# A file written and closed, created, renamed, deleted; never opens and reads (the daemon's own
# imports), and never each write to a file kept open: a log in the project (`log_file =
# "logs/daemon.log"`) would wake the watcher's threads at every line, and they take turns with
# the engine's (a 2,000-step workflow 30-45% slower). An editor, git or a copy closes the file it
# wrote; an atomic save renames it into place.
EVENTS = [
    FileCreatedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]
Log = Callable[[str], None]


def is_watched(path: str | Path, root: Path) -> bool:
    """A ``.py`` file under ``root``, outside hidden directories (.zenaton, .venv, .git)
    and caches."""
    candidate = Path(path)
    if candidate.suffix != ".py":
        return False
    try:
        parts = candidate.relative_to(root).parts
    except ValueError:
        return False
    return not any(part.startswith(".") or part in IGNORED_DIRS for part in parts)


def _watched_dir(path: Path) -> bool:
    """A top-level directory worth a recursive watch: not hidden, not a cache, not a virtualenv."""
    name = path.name
    return (
        path.is_dir() and not name.startswith(".") and name not in IGNORED_DIRS and not (path / "pyvenv.cfg").exists()
    )


class Debounce:
    """Changed paths, released once none has arrived for ``delay`` seconds. Pure: the
    caller passes the time, so tests need no clock."""

    def __init__(self, delay: float = DEBOUNCE) -> None:
        self.delay = delay
        self._paths: set[str] = set()
        self._last: float | None = None

    def add(self, path: str, now: float) -> None:
        self._paths.add(path)
        self._last = now

    def due(self, now: float) -> bool:
        return self._last is not None and now - self._last >= self.delay

    def due_at(self) -> float | None:
        """When the changes noted so far will be released if nothing else changes; None: none."""
        return None if self._last is None else self._last + self.delay

    def take(self) -> set[str]:
        paths, self._paths, self._last = self._paths, set(), None
        return paths


class _Handler(FileSystemEventHandler):
    """Watchdog callbacks: runs on the observer's thread and only takes note."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                self.watcher.watch_new_dir(Path(os.fsdecode(event.dest_path or event.src_path)))
            return
        for raw in (event.src_path, event.dest_path):
            if raw:
                self.watcher.notice(os.fsdecode(raw))


class Watcher:
    """A watchdog observer on the project: the root itself, and each top-level directory
    recursively (so a virtualenv inside the project costs no inotify watches)."""

    def __init__(self, root: Path, delay: float = DEBOUNCE) -> None:
        self.root = root.resolve()
        self._debounce = Debounce(delay)
        self._lock = threading.Lock()
        self._stopped = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._handler = _Handler(self)
        self._observer = Observer()
        try:
            paths = [self.root, *(child for child in sorted(self.root.iterdir()) if _watched_dir(child))]
            for path in paths:
                self._observer.schedule(self._handler, str(path), recursive=path != self.root, event_filter=EVENTS)
            self._observer.start()  # the inotify watches exist once this returns
            if len(self._observer.emitters) < len(paths):  # watchdog drops an emitter that failed to start
                raise OSError("some directories could not be watched (inotify limits?)")
        except BaseException:
            self.stop()
            raise

    def fileno(self) -> int:
        """Readable when something changed (the daemon's pool wakes on it)."""
        return self._read

    def notice(self, path: str) -> None:
        """Called on the observer's thread: note the path, wake the daemon loop."""
        if not is_watched(path, self.root):
            return
        with self._lock:
            if self._stopped:
                return  # the pipe's descriptors may already belong to another file
            self._debounce.add(path, time.monotonic())
            try:
                os.write(self._write, b"x")
            except BlockingIOError:
                pass  # full: the loop looks at the changes anyway

    def watch_new_dir(self, path: Path) -> None:
        """A directory created or moved in: watch it if top-level; its files count as changed."""
        if path.parent == self.root:
            if not _watched_dir(path):
                return
            try:
                self._observer.schedule(self._handler, str(path), recursive=True, event_filter=EVENTS)
            except OSError:
                return
        for found in path.rglob("*.py"):  # written before its watch existed, or moved in whole
            self.notice(str(found))

    def due_in(self) -> float | None:
        """Seconds until the changes noted so far have settled, or None when there are none."""
        if self._debounce.due_at() is None:  # nothing noted: no lock taken (see take_due)
            return None
        with self._lock:
            at = self._debounce.due_at()
        return None if at is None else max(0.0, at - time.monotonic())

    def take_due(self, now: float | None = None) -> set[Path]:
        """The changed files, once they have been quiet long enough; else an empty set.

        The daemon asks at every turn of its loop: when nothing was noted, that costs neither the
        lock nor a read of the pipe. Read without the lock, a note being made is seen at the next
        turn, which its byte in the pipe brings; the pipe holds bytes only while a note does (both
        are written, and emptied, under the lock), so an empty answer never leaves it readable."""
        if self._debounce.due_at() is None:
            return set()
        with self._lock:
            try:
                while os.read(self._read, 4096):
                    pass
            except BlockingIOError:
                pass
            if not self._debounce.due(time.monotonic() if now is None else now):
                return set()
            return {Path(p) for p in self._debounce.take()}

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)
        with self._lock:
            self._stopped = True
            os.close(self._read)
            os.close(self._write)


def syntax_error(path: Path) -> SyntaxError | None:
    """The file's syntax error, or None when it compiles (or no longer exists)."""
    try:
        source = path.read_bytes()
    except OSError:
        return None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        return error
    except ValueError as error:  # null bytes, undecodable text
        return SyntaxError(str(error), (str(path), None, None, None))
    return None


class HotReload:
    """Owned by the daemon loop: ``poll()`` between two engine steps."""

    def __init__(self, config: Config, engine: Engine, pool: WorkerPool, watcher: Watcher, log: Log) -> None:
        self.config = config
        self.engine = engine
        self.pool = pool
        self.watcher = watcher
        self.log = log
        self.pending: set[Path] = set()  # changed since the last successful reload

    def stop(self) -> None:
        self.watcher.stop()

    def due_in(self) -> float | None:
        """Seconds until settled changes are due for a reload (what the daemon may sleep at most)."""
        return self.watcher.due_in()

    def poll(self, now: float | None = None) -> bool:
        """Reload if files changed and have settled; True if a reload was attempted."""
        changed = self.watcher.take_due(now)
        if not changed:
            return False
        self.reload(changed)
        return True

    def reload(self, changed: Iterable[Path]) -> bool:
        """Load the project again from disk; False (and the previous code kept) on any error."""
        self.pending |= set(changed)
        for path in sorted(self.pending):
            error = syntax_error(path)
            if error is not None:
                self.log(f"reload skipped: {self._describe_syntax(error, path)}; still running the previous code")
                return False
        current = self.engine.project
        try:
            project = reload_project(current, self.config.boot, self.config.module)
        except (Exception, SystemExit) as error:
            self.log(f"reload {self._describe_failure(error)}; still running the previous code")
            return False
        self.engine.settle()  # a step the previous code decided is logged before the reload
        self.engine.project = project
        self.engine.cache.clear()
        self.pool.recycle(project)
        count = len(self.pending)
        for path in self.pending:
            _drop_bytecode(path)  # for other processes (CLI, scripts): a same-second edit keeps its size
        self.pending = set()
        self.log(f"reloaded the project ({count} file{'' if count == 1 else 's'} changed)")
        return True

    def _shown(self, filename: str | Path | None) -> str:
        if not filename:
            return "?"
        try:
            return str(Path(filename).resolve().relative_to(self.watcher.root))
        except ValueError:
            return str(filename)

    def _describe_syntax(self, error: SyntaxError, path: Path | None = None) -> str:
        where = self._shown(error.filename or path)
        line = f", line {error.lineno}" if error.lineno else ""
        return f"syntax error in {where}{line}: {error.msg}"

    def _describe_failure(self, error: BaseException) -> str:
        if isinstance(error, SyntaxError):
            return f"skipped: {self._describe_syntax(error)}"
        if isinstance(error, ConfigError) and str(error).startswith("syntax error in "):
            return f"skipped: {error}"
        frames = [f for f in traceback.extract_tb(error.__traceback__) if is_watched(f.filename, self.watcher.root)]
        where = f" (at {self._shown(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""
        what = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
        return f"failed: cannot import the project: {what}{where}"


def _drop_bytecode(path: Path) -> None:
    try:
        Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    except (OSError, ValueError, NotImplementedError):  # NotImplementedError: this Python keeps no bytecode cache
        pass


def start(config: Config, engine: Engine, pool: WorkerPool, log: Log) -> HotReload | None:
    """Watch the project, or say why it cannot be watched and run without reload."""
    try:
        watcher = Watcher(config.root)
    except (ImportError, OSError) as error:
        log(f"hot reload is off: cannot watch {config.root}: {error}")
        return None
    pool.add_wake_fd(watcher.fileno())
    return HotReload(config, engine, pool, watcher, log)

"""Hot reload: the change filter, the debouncer, source snapshots, reload in place and the pool."""
from __future__ import annotations

import importlib
import selectors
import sys
import textwrap
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.errors import ConfigError
from zenaton_runtime.project.loader import Project, SourceSnapshot, load_project, project_modules, reload_project
from zenaton_runtime.pool.worker_pool import WorkerPool
from zenaton_runtime.project.reload import Debounce, HotReload, Watcher, is_watched, syntax_error
from zenaton_runtime.store import open_store
from zenaton_runtime.pool.attempts import Attempt, Outcome
from zenaton_runtime.pool.inline import InlineRunner
from tests.harness import Harness

JOBS = '''
import os
import time

from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class Answer(Task, Zenatonable):
    def handle(self):
        return {value}


class Gate(Task, Zenatonable):
    """Returns once the file named by its argument exists."""

    def __init__(self, path):
        self.path = path

    def handle(self):
        while not os.path.exists(self.path):
            time.sleep(0.01)
        return "opened"
'''


class Scratch:
    """A throwaway project with a uniquely named package, imported as a module (no boot.py)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = f"reload_scratch_{uuid.uuid4().hex[:12]}"
        (root / self.package).mkdir()
        (root / self.package / "__init__.py").write_text(f"from {self.package} import jobs  # noqa: F401\n")
        self.jobs = root / self.package / "jobs.py"
        self.write(1)

    def write(self, value: object, extra: str = "") -> None:
        self.jobs.write_text(textwrap.dedent(JOBS).format(value=value) + extra)

    def load(self, snapshot: SourceSnapshot | None = None) -> Project:
        return load_project(self.root, boot=None, module=self.package, snapshot=snapshot)

    def answer(self, project: Project) -> Any:
        return project.task("Answer")().handle()

    def forget(self) -> None:
        for name in [n for n in sys.modules if n == self.package or n.startswith(self.package + ".")]:
            del sys.modules[name]

    def cleanup(self) -> None:
        self.forget()
        sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, SourceSnapshot) and f.root == self.root)]
        while str(self.root) in sys.path:
            sys.path.remove(str(self.root))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    project = Scratch(tmp_path.resolve())
    yield project
    project.cleanup()


# -- what counts as a change -----------------------------------------------------------


def test_only_python_files_outside_hidden_dirs_and_caches_are_watched(tmp_path: Path) -> None:
    root = tmp_path
    assert is_watched(root / "boot.py", root)
    assert is_watched(root / "flowlib" / "tasks.py", root)
    for ignored in (".zenaton/zenaton.py", ".venv/lib/x.py", "flowlib/__pycache__/tasks.py",
                    "venv/lib/python3.11/site-packages/x.py", "flowlib/tasks.pyc", "notes.txt", "zenaton.toml"):
        assert not is_watched(root / ignored, root), ignored
    assert not is_watched(tmp_path.parent / "elsewhere.py", root)


def test_changes_are_released_once_quiet_for_the_delay() -> None:
    debounce = Debounce(0.3)
    assert not debounce.due(100.0)
    debounce.add("a.py", 100.0)
    debounce.add("b.py", 100.2)  # a second save restarts the quiet period
    assert not debounce.due(100.4)
    assert debounce.due(100.6)
    assert debounce.due_at() == pytest.approx(100.5)  # when the daemon must look again
    assert debounce.take() == {"a.py", "b.py"}
    assert not debounce.due(200.0) and debounce.take() == set() and debounce.due_at() is None


def changes_seen(watcher: Watcher, expected: set[Path], limit: float = 10.0) -> set[Path]:
    """Everything the watcher reported until ``expected`` is among it (waits on its pipe)."""
    seen: set[Path] = set()
    deadline = time.monotonic() + limit
    with selectors.DefaultSelector() as selector:
        selector.register(watcher.fileno(), selectors.EVENT_READ)
        while not expected <= seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"saw only {seen}"
            selector.select(remaining)
            seen |= watcher.take_due(time.monotonic() + 60)  # as if the quiet period were over
    return seen


def test_the_watcher_reports_python_files_including_in_new_directories(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "pkg").mkdir()
    (root / ".zenaton").mkdir()
    watcher = Watcher(root)
    try:
        (root / ".zenaton" / "hidden.py").write_text("x = 1\n")
        (root / "pkg" / "notes.txt").write_text("not code\n")
        (root / "pkg" / "__pycache__").mkdir()
        (root / "pkg" / "__pycache__" / "mod.py").write_text("x = 1\n")
        (root / "pkg" / "mod.py").write_text("x = 1\n")
        (root / "boot.py").write_text("import pkg.mod\n")
        (root / "later").mkdir()  # a new top-level directory gets its own watch
        (root / "later" / "new.py").write_text("y = 2\n")
        expected = {root / "pkg" / "mod.py", root / "boot.py", root / "later" / "new.py"}
        assert changes_seen(watcher, expected) == expected
    finally:
        watcher.stop()


def test_writes_to_a_file_kept_open_in_the_project_wake_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon log in the project (log_file = "logs/daemon.log") is appended to, never closed:
    the kernel reports none of its writes to the watcher, whose threads stay asleep."""
    root = tmp_path.resolve()
    (root / "logs").mkdir()
    events: list[tuple[str, str]] = []
    from zenaton_runtime.project import reload as hot

    dispatch = hot._Handler.dispatch

    def noting(self: Any, event: Any) -> None:
        events.append((event.event_type, event.src_path))
        dispatch(self, event)

    monkeypatch.setattr(hot._Handler, "dispatch", noting)
    watcher = Watcher(root)
    try:
        with open(root / "logs" / "daemon.log", "w") as log:
            for n in range(50):
                log.write(f"line {n}\n")
                log.flush()
            (root / "logs" / "mod.py").write_text("x = 1\n")  # then a saved source: seen, after them
            assert changes_seen(watcher, {root / "logs" / "mod.py"}) == {root / "logs" / "mod.py"}
        assert [kind for kind, path in events if path.endswith("daemon.log")] in (["created"], ["created", "closed"])
    finally:
        watcher.stop()


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("x = 1\ndef f(:\n    pass\n")
    error = syntax_error(path)
    assert error is not None and error.lineno == 2 and error.filename == str(path)
    path.write_text("x = 1\n")
    assert syntax_error(path) is None
    assert syntax_error(tmp_path / "deleted.py") is None


# -- loading from a snapshot and reloading in place --------------------------------------


def test_a_snapshot_imports_the_recorded_source_not_the_file_on_disk(scratch: Scratch, tmp_path: Path) -> None:
    project = scratch.load(SourceSnapshot(scratch.root))
    assert project.snapshot is not None and str(scratch.jobs) in project.snapshot.sources
    saved = tmp_path / "sources.json"
    project.snapshot.write(saved)
    scratch.write(2, extra="\ndef broken(:\n")  # saved half-way: a worker must not see it
    scratch.forget()
    again = scratch.load(SourceSnapshot.read(saved, scratch.root))
    assert scratch.answer(again) == 1
    assert not (scratch.jobs.parent / "__pycache__").exists()  # compiled from the text, never cached


def test_reload_project_takes_new_code_and_keeps_the_old_on_any_failure(scratch: Scratch) -> None:
    first = scratch.load(SourceSnapshot(scratch.root))
    scratch.write(2)
    second = reload_project(first, boot=None, module=scratch.package)
    assert scratch.answer(second) == 2 and scratch.answer(first) == 1
    jobs = sys.modules[f"{scratch.package}.jobs"]

    scratch.write(3, extra="\ndef broken(:\n")
    with pytest.raises(ConfigError, match=r"syntax error in .*jobs\.py, line \d+"):
        reload_project(second, boot=None, module=scratch.package)
    assert sys.modules[f"{scratch.package}.jobs"] is jobs
    assert importlib.import_module(f"{scratch.package}.jobs").Answer().handle() == 2

    scratch.write(4, extra='\nraise RuntimeError("broken at import")\n')
    with pytest.raises(RuntimeError, match="broken at import"):
        reload_project(second, boot=None, module=scratch.package)
    assert sys.modules[f"{scratch.package}.jobs"] is jobs
    assert second.snapshot in sys.meta_path  # lazy imports still come from the running code


def test_project_modules_never_include_the_engine_itself(scratch: Scratch) -> None:
    scratch.load()
    names = set(project_modules(scratch.root))
    assert names == {scratch.package, f"{scratch.package}.jobs"}
    repo = Path(__file__).resolve().parents[1]
    assert not any(n.partition(".")[0] in ("runtime", "zenaton_runtime", "zenaton", "zenaton_cli") for n in project_modules(repo))


class FakeRun:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_hot_reload_skips_broken_code_and_swaps_in_good_code(scratch: Scratch) -> None:
    project = scratch.load(SourceSnapshot(scratch.root))
    store = open_store("memory://")
    engine = Engine(store, project, InlineRunner(project))
    recycled: list[Project] = []
    pool = SimpleNamespace(recycle=recycled.append)
    logs: list[str] = []
    config = SimpleNamespace(boot=None, module=scratch.package)
    watcher = SimpleNamespace(root=scratch.root)
    hot = HotReload(config, engine, pool, watcher, logs.append)  # type: ignore[arg-type]
    run = FakeRun()
    engine.cache.put("suspended", run)  # type: ignore[arg-type]
    try:
        scratch.write(2, extra="\ndef broken(:\n")
        assert not hot.reload({scratch.jobs})
        assert logs[-1].startswith(f"reload skipped: syntax error in {scratch.package}/jobs.py, line ")
        assert logs[-1].endswith("; still running the previous code")
        assert engine.project is project and not recycled and not run.closed

        scratch.write(3, extra='\nraise RuntimeError("broken at import")\n')
        assert not hot.reload({scratch.jobs})
        assert logs[-1].startswith("reload failed: cannot import the project: RuntimeError: broken at import")
        assert f"(at {scratch.package}/jobs.py, line " in logs[-1]
        assert engine.project is project and scratch.answer(project) == 1

        scratch.write(4)
        assert hot.reload({scratch.jobs})
        assert logs[-1] == "reloaded the project (1 file changed)"
        assert engine.project is not project and recycled == [engine.project]
        assert scratch.answer(engine.project) == 4
        assert run.closed and len(engine.cache) == 0
    finally:
        store.close()


def test_clearing_the_run_cache_closes_suspended_runs_which_replay_later(sqlite_harness: Harness) -> None:
    from flowlib import review
    from flowlib.tasks import Ping

    review.CLOSED.clear()
    instance_id = sqlite_harness.dispatch(review.Finalizing())
    sqlite_harness.run()
    assert len(sqlite_harness.engine.cache) == 1
    sqlite_harness.engine.cache.clear()
    assert review.CLOSED == ["closed"] and len(sqlite_harness.engine.cache) == 0
    sqlite_harness.control.send_event(sqlite_harness.instance(instance_id), Ping("after"))
    sqlite_harness.run()
    assert sqlite_harness.status(instance_id) == "completed"
    review.CLOSED.clear()


# -- the pool: new workers for new code, nothing lost ------------------------------------


def make_attempt(project: Project, name: str, *args: object) -> Attempt:
    task = project.task(name)(*args)
    data = project.codec.encode(task, "task")
    return Attempt(f"t-{uuid.uuid4().hex[:8]}", "i1", "test", name, data, 0, None)


def outcome_of(pool: WorkerPool, limit: float = 15.0) -> Outcome:
    deadline = time.monotonic() + limit
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no outcome in time"
        outcomes = pool.poll(remaining)
        if outcomes:
            (outcome,) = outcomes
            assert outcome.ok, outcome.error
            return outcome


def test_recycle_lets_a_running_attempt_finish_then_replaces_its_worker(scratch: Scratch, tmp_path: Path) -> None:
    project = scratch.load(SourceSnapshot(scratch.root))
    gate = tmp_path / "gate"
    with WorkerPool(project, root=scratch.root, module=scratch.package, store_url="memory://", concurrency=1) as pool:
        scratch.write(2)  # on disk only: workers run the daemon's snapshot
        pool.submit(make_attempt(project, "Answer"))
        assert outcome_of(pool).result == "1"
        (old_pid,) = pool.worker_pids()

        pool.submit(make_attempt(project, "Gate", str(gate)))  # the worker is warm: it runs at once
        new = reload_project(project, boot=None, module=scratch.package)
        pool.recycle(new)
        assert pool.worker_pids() == [old_pid] and pool.free_slots() == 0  # busy: left to finish
        gate.touch()
        assert outcome_of(pool).result == '"opened"'
        assert pool.worker_pids() == []  # replaced once its attempt was reported

        pool.submit(make_attempt(new, "Answer"))
        pool.recycle(new)  # while the new worker loads: its attempt moves to the next one
        assert outcome_of(pool).result == "2"
        assert old_pid not in pool.worker_pids()

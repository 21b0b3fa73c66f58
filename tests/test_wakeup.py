"""An idle daemon wakes when another process makes work (Store.wakeup_fd): on PostgreSQL the
LISTENing connection's socket sits in the worker pool's select, a notification makes it
readable, the engine's next look (changes()) reads it off, and the idle poll is only a slow
fallback. SQLite and the memory store have no such fd: their daemon polls every IDLE_POLL."""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e import zenaton
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)
from tests.test_store_contract import create
from zenaton_runtime import daemon as daemon_module
from zenaton_runtime.daemon import IDLE_FALLBACK, IDLE_POLL, StoreWake, run_daemon
from zenaton_runtime.project.config import load_config
from zenaton_runtime.store.memory import MemoryStore
from zenaton_runtime.store.postgres import PostgresStore
from zenaton_runtime.store.sqlite import SQLiteStore


WAKEFLOWS = """
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.traits.zenatonable import Zenatonable


class Double(Task, Zenatonable):
    def __init__(self, x):
        self.x = x

    def handle(self):
        return 2 * self.x


class WakeFlow(Workflow, Zenatonable):
    def __init__(self, x):
        self.x = x

    def handle(self):
        return Double(self.x).execute()
"""


def readable(fd: int, timeout: float = 0.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_the_memory_store_has_no_wakeup_fd() -> None:
    assert MemoryStore().wakeup_fd() is None
    assert IDLE_POLL < IDLE_FALLBACK <= 1.0  # the lookout's safety net looks once a second anyway


def test_a_sqlite_writer_nudges_the_daemon_s_socket_and_changes_reads_it_off(tmp_path: Path) -> None:
    daemon_side, client = SQLiteStore(tmp_path / "z.db"), SQLiteStore(tmp_path / "z.db")
    try:
        fd = daemon_side.wakeup_fd()
        assert fd is not None and daemon_side.wakeup_fd() == fd  # bound once
        assert select.select([fd], [], [], 0)[0] == []
        before = daemon_side.changes()
        create(client, "a")  # a dispatch from another process (another store object here)
        assert select.select([fd], [], [], 5)[0] == [fd]  # readable: the daemon wakes
        assert daemon_side.changes() != before  # the look that follows sees the dispatch ...
        assert select.select([fd], [], [], 0)[0] == []  # ... and quiets the socket
        create(daemon_side, "b")  # the daemon's own writes wake nobody
        assert select.select([fd], [], [], 0)[0] == []
        other = SQLiteStore(tmp_path / "other.db")
        try:
            create(other, "c")  # another store's writes reach another socket
            assert select.select([fd], [], [], 0)[0] == []
        finally:
            other.close()
    finally:
        client.close()
        daemon_side.close()


def test_a_notification_makes_the_fd_readable_and_changes_reads_it_off(pg_clean_url: str) -> None:
    daemon_store, client = PostgresStore(pg_clean_url), PostgresStore(pg_clean_url)
    try:
        fd = daemon_store.wakeup_fd()
        assert fd is not None and fd == daemon_store.wakeup_fd()  # the same socket while it lives
        assert daemon_store._conn.execute("SELECT pg_listening_channels()").fetchall() == [("zenaton",)]
        seen = daemon_store.changes()
        assert not readable(fd)
        create(client, "w")  # a dispatch: its NOTIFY is delivered at its COMMIT
        assert readable(fd, 10.0), "a client's dispatch did not make the daemon's fd readable"
        assert daemon_store.changes() != seen
        assert not readable(fd), "still readable after changes(): an idle daemon would spin"
        seen = daemon_store.changes()
        create(daemon_store, "x")  # the store's own write: counted at once, nothing left on the socket
        assert daemon_store.changes() != seen and not readable(fd)
    finally:
        daemon_store.close()
        client.close()


def test_a_new_connection_brings_a_new_fd_that_listens_again(pg_clean_url: str) -> None:
    daemon_store, client = PostgresStore(pg_clean_url), PostgresStore(pg_clean_url)
    try:
        assert daemon_store.wakeup_fd() is not None
        daemon_store._conn.close()  # the connection is lost
        assert daemon_store.wakeup_fd() is None  # the daemon polls; it never connects here
        daemon_store.changes()  # the next step connects again, and listens again
        fd = daemon_store.wakeup_fd()
        assert fd is not None
        create(client, "w")
        assert readable(fd, 10.0)
    finally:
        daemon_store.close()
        client.close()


class FakeStore:
    def __init__(self) -> None:
        self.fd: int | None = None

    def wakeup_fd(self) -> int | None:
        return self.fd


class FakePool:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def add_wake_fd(self, fd: int) -> None:
        self.calls.append(("add", fd))

    def remove_wake_fd(self, fd: int) -> None:
        self.calls.append(("remove", fd))


def test_store_wake_follows_the_store_s_fd_and_registers_it_again_now_and_then() -> None:
    store, pool, clock = FakeStore(), FakePool(), [0.0]
    wake = StoreWake(store, pool, renew=1.0, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    wake.refresh()
    assert wake.fd is None and pool.calls == []  # no fd: the daemon polls every IDLE_POLL
    store.fd = 7
    wake.refresh()
    assert wake.fd == 7 and pool.calls == [("add", 7)]
    clock[0] = 0.5
    wake.refresh()
    assert pool.calls == [("add", 7)]  # the same fd: nothing to do, no system call
    clock[0] = 1.5  # the same number may be a new socket the kernel no longer watches
    wake.refresh()
    assert pool.calls[1:] == [("remove", 7), ("add", 7)]
    store.fd = 9  # reconnected
    wake.refresh()
    assert wake.fd == 9 and pool.calls[3:] == [("remove", 7), ("add", 9)]
    store.fd = None  # the server cannot be reached
    wake.refresh()
    assert wake.fd is None and pool.calls[5:] == [("remove", 9)]


def test_store_wake_lets_go_of_the_fd_while_a_change_seen_waits_out_the_look_delay() -> None:
    store, pool, clock = FakeStore(), FakePool(), [0.0]
    wake = StoreWake(store, pool, renew=1.0, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    store.fd = 7
    wake.refresh()
    wake.refresh(wanted=False)  # the notifications meanwhile must not wake the daemon one by one
    assert wake.fd is None and pool.calls == [("add", 7), ("remove", 7)]
    wake.refresh()
    assert wake.fd == 7 and pool.calls[2:] == [("add", 7)]


def test_an_idle_sqlite_daemon_picks_up_a_dispatch_at_once_not_at_its_fallback_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picked_up(tmp_path, f"sqlite:///{tmp_path / 'wake.db'}", monkeypatch)


def test_an_idle_daemon_picks_up_a_dispatch_at_once_not_at_its_fallback_poll(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    picked_up(tmp_path, pg_url, monkeypatch)


def picked_up(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("wakeflows", "boot"):  # this test's project, imported fresh (the other test had one)
        sys.modules.pop(name, None)
    try:
        _picked_up(tmp_path, url, monkeypatch)
    finally:
        for name in ("wakeflows", "boot"):
            sys.modules.pop(name, None)


def _picked_up(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real daemon loop (run_daemon, in this process), its fallback poll set to 60 s: once it
    is idle, nothing but the store's fd can wake it before then (no timer, no task, no signal).
    A dispatch from another process must complete; the helper gives it 30 s, half the fallback,
    so a pass means the fd woke the daemon, whatever the machine's load (it takes milliseconds)."""
    monkeypatch.setattr(daemon_module, "IDLE_FALLBACK", 60.0)
    root = tmp_path / "wakeproj"  # a module name of its own: the test project's is imported here already
    root.mkdir()
    (root / "zenaton.toml").write_text(
        f'[project]\nname = "wake"\nenv = "dev"\nboot = "boot.py"\n\n[store]\nurl = "{url}"\n\n'
        "[daemon]\nconcurrency = 1\nreload = false\n"
    )
    (root / "boot.py").write_text("import wakeflows  # noqa: F401\n")
    (root / "wakeflows.py").write_text(WAKEFLOWS)
    monkeypatch.delenv("ZENATON_STORE_URL", raising=False)
    monkeypatch.delenv("ZENATON_APP_ENV", raising=False)
    config = load_config(root)
    lines: list[str] = []
    outcome: dict[str, object] = {}

    def client() -> None:
        try:
            deadline = time.monotonic() + 60
            while not any("daemon started" in line for line in lines):
                if time.monotonic() > deadline:
                    raise AssertionError("the daemon did not start")
                time.sleep(0.05)
            time.sleep(1.5)  # the workers are warm, the loop waits on its select
            loops = len(lines)
            instance_id = zenaton(root, "dispatch", "WakeFlow", "5").stdout.split()[0]
            dispatched = time.monotonic()
            while time.monotonic() - dispatched < 30:
                if json.loads(zenaton(root, "inspect", instance_id, "--json").stdout)["status"] == "completed":
                    outcome["seconds"] = time.monotonic() - dispatched
                    break
                time.sleep(0.01)
            outcome["idle_lines"] = lines[loops:]
        except BaseException as error:  # reported by the test, in the main thread
            outcome["error"] = error
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # run_daemon's own handler: a clean stop

    thread = threading.Thread(target=client)
    thread.start()
    try:
        assert run_daemon(config, log=lines.append, reload=False) == 0
    finally:
        thread.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    assert "seconds" in outcome, f"the dispatch was not picked up in 30 s: {lines[-10:]}"
    assert any("WakeFlow" in line and "completed" in line for line in lines), lines[-10:]

"""The store refuses writes (disk full, read-only): the engine keeps everything and carries on.

On SQLite and on PostgreSQL: a full disk is SQLite's page limit reached, or PostgreSQL's own
disk-full error (SQLSTATE 53100) raised by a trigger on every table a step writes; a read-only
store is SQLite's query_only, or PostgreSQL's read-only transactions.
"""
from __future__ import annotations

from typing import Iterator

import pytest
from flowlib.tasks import Ping
from flowlib.workflows import EventFlow, Long

from tests.harness import Harness

PG_TABLES = ("instances", "journal", "tasks", "timers", "inbox")


def fill_the_disk(h: Harness) -> None:
    """A SQLite store's disk is full (other tests use this too)."""
    connection = h.store._conn  # the engine's own connection: SQLite's page limit acts as a full disk
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(h: Harness) -> None:
    h.store._conn.execute("PRAGMA max_page_count = 1073741823")


class Backend:
    """How to make one backend's store refuse writes, and allow them again."""

    url: str
    full_disk_words: str

    def fill_the_disk(self, h: Harness) -> None: ...
    def free_the_disk(self, h: Harness) -> None: ...
    def read_only(self, h: Harness, on: bool) -> None: ...


class SQLite(Backend):
    full_disk_words = "full"

    def __init__(self, tmp_path) -> None:
        self.url = f"sqlite:///{tmp_path}/zenaton.db"

    def fill_the_disk(self, h: Harness) -> None:
        fill_the_disk(h)

    def free_the_disk(self, h: Harness) -> None:
        free_the_disk(h)

    def read_only(self, h: Harness, on: bool) -> None:
        h.store._conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")


class PostgreSQL(Backend):
    full_disk_words = "No space left on device"

    def __init__(self, url: str) -> None:
        self.url = url

    def fill_the_disk(self, h: Harness) -> None:
        c = h.store._conn
        c.execute(
            "CREATE FUNCTION zenaton.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device'"
            " USING ERRCODE = 'disk_full', HINT = 'Check free disk space.'; END $$"
        )
        for table in PG_TABLES:
            c.execute(
                f"CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE OR DELETE ON zenaton.{table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION zenaton.disk_full()"
            )

    def free_the_disk(self, h: Harness) -> None:
        c = h.store._conn
        for table in PG_TABLES:
            c.execute(f"DROP TRIGGER disk_full ON zenaton.{table}")
        c.execute("DROP FUNCTION zenaton.disk_full()")

    def read_only(self, h: Harness, on: bool) -> None:
        h.store._conn.execute(f"SET default_transaction_read_only = {'on' if on else 'off'}")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    yield SQLite(tmp_path) if request.param == "sqlite" else PostgreSQL(request.getfixturevalue("pg_clean_url"))


def test_a_full_disk_loses_nothing_and_the_engine_continues_when_space_returns(backend: Backend):
    h = Harness(backend.url, background_commits=isinstance(backend, PostgreSQL))
    logs: list[str] = []
    h.engine.emit = logs.append
    try:
        instance_id = h.dispatch(Long(30))
        h.engine.step()
        backend.fill_the_disk(h)
        for _ in range(200):  # free pages inside the file are used up first
            if h.engine.step() == 0 and h.engine.store_failure is not None:
                break
        assert h.engine.store_failure is not None
        before = h.kinds(instance_id)
        for _ in range(5):
            assert h.engine.step() == 0  # refused writes: nothing happens, nothing crashes
        assert sum("cannot write to the store" in line for line in logs) == 1  # said once, not every try
        assert backend.full_disk_words in str(h.engine.store_failure)
        assert h.kinds(instance_id) == before  # what was committed is intact
        backend.free_the_disk(h)
        h.run()
        assert h.status(instance_id) == "completed" and h.result(instance_id) == 30
        assert "the store accepts writes again; carrying on" in logs
        kinds = h.kinds(instance_id)
        for position in range(1, 31):
            assert kinds.count(f"task_completed:{position}:Add") == 1
    finally:
        h.close()


def test_a_read_only_store_keeps_events_and_results_for_later(backend: Backend):
    h = Harness(backend.url, background_commits=isinstance(backend, PostgreSQL))
    h.engine.emit = lambda line: None
    try:
        instance_id = h.dispatch(EventFlow("ro"))
        h.run()
        h.control.send_event(h.instance(instance_id), Ping("kept"))
        backend.read_only(h, True)
        for _ in range(3):
            assert h.engine.step() == 0
        assert "readonly" in str(h.engine.store_failure).replace("-", "").replace(" ", "")
        backend.read_only(h, False)
        h.run()
        assert h.result(instance_id) == ["before", "kept", ["kept"], 1]
    finally:
        h.close()

"""The store refuses writes (disk full, read-only): the engine keeps everything and carries on."""
from __future__ import annotations

from flowlib.tasks import Ping
from flowlib.workflows import EventFlow, Long

from tests.harness import Harness


def fill_the_disk(h: Harness) -> None:
    connection = h.store._conn  # the engine's own connection: SQLite's page limit acts as a full disk
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(h: Harness) -> None:
    h.store._conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_loses_nothing_and_the_engine_continues_when_space_returns(tmp_path):
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    logs: list[str] = []
    h.engine.emit = logs.append
    try:
        instance_id = h.dispatch(Long(30))
        h.engine.step()
        fill_the_disk(h)
        for _ in range(200):  # free pages inside the file are used up first
            if h.engine.step() == 0 and h.engine.store_failure is not None:
                break
        assert h.engine.store_failure is not None
        before = h.kinds(instance_id)
        for _ in range(5):
            assert h.engine.step() == 0  # refused writes: nothing happens, nothing crashes
        assert sum("cannot write to the store" in line for line in logs) == 1  # said once, not every try
        assert "full" in str(h.engine.store_failure)
        assert h.kinds(instance_id) == before  # what was committed is intact
        free_the_disk(h)
        h.run()
        assert h.status(instance_id) == "completed" and h.result(instance_id) == 30
        assert "the store accepts writes again; carrying on" in logs
        kinds = h.kinds(instance_id)
        for position in range(1, 31):
            assert kinds.count(f"task_completed:{position}:Add") == 1
    finally:
        h.close()


def test_a_read_only_store_keeps_events_and_results_for_later(tmp_path):
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    h.engine.emit = lambda line: None
    try:
        instance_id = h.dispatch(EventFlow("ro"))
        h.run()
        h.control.send_event(h.instance(instance_id), Ping("kept"))
        h.store._conn.execute("PRAGMA query_only = ON")
        for _ in range(3):
            assert h.engine.step() == 0
        assert "readonly" in str(h.engine.store_failure).replace("-", "").replace(" ", "")
        h.store._conn.execute("PRAGMA query_only = OFF")
        h.run()
        assert h.result(instance_id) == ["before", "kept", ["kept"], 1]
    finally:
        h.close()

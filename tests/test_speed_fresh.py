"""A fresh instance's first decisions are made without reading its journal back (SQLite reads
the journal's length with the instance); any other rebuild still replays the stored journal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flowlib.tasks import Ping
from flowlib.workflows import EventFlow, Sequential

from tests.harness import Harness
from zenaton_runtime.models import InboxKind


@pytest.fixture(params=["sqlite", "sqlite-background"])
def h(request: pytest.FixtureRequest, tmp_path) -> Iterator[Harness]:
    harness = Harness(f"sqlite:///{tmp_path}/zenaton.db", background_commits=request.param == "sqlite-background")
    yield harness
    harness.close()


def journal_reads(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = h.store.journal

    def journal(instance_id: str, after_seq: int = 0) -> Any:
        reads.append(instance_id)
        return real(instance_id, after_seq)

    monkeypatch.setattr(h.store, "journal", journal)
    return reads


def test_fresh_instances_start_without_reading_their_journal(h: Harness, monkeypatch) -> None:
    ids = [h.dispatch(Sequential(x)) for x in range(3)]
    reads = journal_reads(h, monkeypatch)
    h.run()
    assert reads == []
    assert [h.result(i) for i in ids] == [11, 12, 13]
    assert h.kinds(ids[0]) == [
        "started",
        "task_scheduled:1:Add",
        "task_completed:1:Add",
        "task_scheduled:2:Add",
        "task_completed:2:Add",
        "completed",
    ]


def test_the_length_is_the_one_read_with_the_instance(h: Harness) -> None:
    instance_id, other = h.dispatch(Sequential(1)), h.dispatch(Sequential(2))
    h.store.get_instances([instance_id])
    assert h.store.journal_length(instance_id) == 1  # type: ignore[attr-defined]
    assert h.store.journal_length(other) is None  # type: ignore[attr-defined]  # not read by that call
    h.run()
    h.store.get_instances([instance_id, other])
    assert h.store.journal_length(instance_id) == len(h.store.journal(instance_id)) == 6  # type: ignore[attr-defined]


def test_a_run_rebuilt_later_replays_the_stored_journal(tmp_path, monkeypatch) -> None:
    h = Harness(f"sqlite:///{tmp_path}/zenaton.db", cache_size=0)  # every step rebuilds its run
    try:
        instance_id = h.dispatch(EventFlow("evicted"))
        h.run()
        reads = journal_reads(h, monkeypatch)
        h.runtime.send_event(EventFlow, "evicted", Ping(5))
        h.run()
        assert instance_id in reads
        assert h.result(instance_id) == ["before", 5, [5], 1]
    finally:
        h.close()


def test_an_event_paused_and_resumed_before_the_first_step(h: Harness) -> None:
    """Inputs delivered in the activation that starts the run: what it journaled comes first."""
    instance_id = h.dispatch(EventFlow("early"))
    h.store.post(instance_id, InboxKind.PAUSE)
    h.store.post(instance_id, InboxKind.RESUME)
    h.run()
    h.runtime.send_event(EventFlow, "early", Ping(7))
    h.run()
    assert h.result(instance_id) == ["before", 7, [7], 1]
    assert h.kinds(instance_id)[:3] == ["started", "paused", "resumed"]

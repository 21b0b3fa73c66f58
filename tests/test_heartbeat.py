"""The daemon's record in the store: the engine's counters, and the heartbeat that publishes
them on a fake clock (no sleeps: time moves by hand)."""
from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from flowlib.tasks import FLAGS
from flowlib.workflows import FragileFlow, RetryFlow, Sequential

from tests.harness import Harness
from zenaton_runtime.daemon import Heartbeat
from zenaton_runtime.engine.stats import COMMIT_BOUNDS, EngineStats
from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import DaemonRecord


class Monotonic:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def beats(harness: Harness, monotonic: Monotonic, log: list[str]) -> Heartbeat:
    return Heartbeat(
        harness.store, harness.engine, harness.runner, env="dev", workers=4, log=log.append, monotonic=monotonic
    )


def the_record(harness: Harness) -> DaemonRecord:
    (record,) = harness.store.daemons()
    return record


def test_the_engine_counts_steps_commits_and_attempts_by_outcome(harness: Harness) -> None:
    harness.dispatch(Sequential(1))
    harness.run()
    stats = harness.engine.stats
    assert (stats.completed, stats.failed, stats.retried) == (2, 0, 0)
    assert stats.steps == 3  # started, then each task's result: one instance step each
    assert stats.commits >= 3 and sum(stats.commit_buckets) == stats.commits
    retrying = harness.dispatch(RetryFlow(succeed_at=2))  # two failed attempts retried, then one success
    harness.run()
    harness.advance(5)
    harness.advance(10)
    assert harness.status(retrying) == "completed"
    assert (stats.completed, stats.failed, stats.retried) == (3, 0, 2)
    FLAGS["fail_always"] = True
    try:
        fragile = harness.dispatch(FragileFlow())
        harness.run()
    finally:
        FLAGS["fail_always"] = False
    assert harness.status(fragile) == "paused"
    assert (stats.completed, stats.failed, stats.retried) == (3, 1, 2)


def completed(harness: Harness, instance_id: str) -> int:
    return sum(kind.startswith("task_completed") for kind in harness.kinds(instance_id))


def test_attempts_of_a_step_whose_commit_fails_are_counted_once(tmp_path: Any) -> None:
    from flowlib.workflows import Long

    from tests.test_store_failures import fill_the_disk, free_the_disk

    harness = Harness(f"sqlite:///{tmp_path}/zenaton.db")
    harness.engine.emit = lambda line: None
    try:
        instance_id = harness.dispatch(Long(30))
        harness.engine.step()
        fill_the_disk(harness)
        for _ in range(200):
            if harness.engine.step() == 0 and harness.engine.store_failure is not None:
                break
        assert harness.engine.store_failure is not None
        for _ in range(3):
            harness.engine.step()  # the same results, refused again
        stats = harness.engine.stats
        assert stats.completed == completed(harness, instance_id)  # what the store holds, not what was tried
        free_the_disk(harness)
        harness.run()
        assert stats.completed == completed(harness, instance_id) == 30
        assert stats.steps == 31 and (stats.failed, stats.retried) == (0, 0)
    finally:
        harness.close()


def test_the_stats_json_holds_a_cumulative_latency_histogram() -> None:
    stats = EngineStats()
    for seconds in (0.0005, 0.001, 0.003, 0.003, 7.0):  # a bound itself counts in its bucket (le)
        stats.committed(seconds)
    stats.steps, stats.completed, stats.failed, stats.retried, stats.instances_lost = 9, 4, 1, 2, 3
    data = json.loads(stats.to_json())
    histogram = data.pop("commit_seconds")
    assert data == {
        "steps": 9, "commits": 5, "instances_lost": 3, "task_attempts": {"completed": 4, "failed": 1, "retried": 2}
    }
    assert histogram["le"] == list(COMMIT_BOUNDS)
    assert histogram["buckets"][:4] == [2, 2, 4, 4] and histogram["buckets"][-1] == 4  # 7 s is only in +Inf
    assert histogram["count"] == 5 and histogram["sum"] == pytest.approx(7.0075)


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_the_record_is_written_at_start_every_interval_and_removed_at_stop(url: str, tmp_path: Any) -> None:
    harness = Harness("memory://" if url == "memory://" else f"sqlite:///{tmp_path}/zenaton.db")
    monotonic, log = Monotonic(), []
    try:
        heartbeat = beats(harness, monotonic, log)
        heartbeat.start()
        record = the_record(harness)
        assert (record.id, record.pid, record.host, record.env) == (heartbeat.id, os.getpid(), socket.gethostname(), "dev")
        assert (record.workers, record.busy_workers, record.steps, record.steps_per_second) == (4, 0, 0, 0.0)
        assert record.started_at == record.heartbeat_at == harness.clock.now()

        harness.dispatch(Sequential(1))
        harness.run()
        monotonic.t += 1.999
        harness.clock.advance(1.999)
        assert heartbeat.poll() == 0
        assert the_record(harness) == record  # not yet: nothing written between two beats

        monotonic.t += 0.001
        harness.clock.advance(0.001)
        heartbeat.poll()
        record = the_record(harness)
        assert record.heartbeat_at == harness.clock.now() and record.steps == 3
        assert record.steps_per_second == 1.5  # 3 steps over the 2 s since the last beat
        assert record.instances_held == 0  # Sequential completed: its run left the cache
        stats = json.loads(record.stats)
        assert stats["steps"] == 3 and stats["task_attempts"]["completed"] == 2
        assert stats["commit_seconds"]["count"] == stats["commits"] >= 3

        heartbeat.stop()
        assert harness.store.daemons() == []
        assert log == []
    finally:
        harness.close()


def test_a_heartbeat_that_cannot_be_written_never_stops_the_daemon(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monotonic, log = Monotonic(), []
    heartbeat = beats(harness, monotonic, log)
    heartbeat.start()
    written = harness.store.heartbeat

    def refuse(record: DaemonRecord) -> None:
        raise StoreError("store z.db: database or disk is full")

    monkeypatch.setattr(harness.store, "heartbeat", refuse)
    for _ in range(3):
        monotonic.t += 2
        harness.clock.advance(2)
        heartbeat.poll()  # does not raise
    assert log == ["cannot write the daemon's record to the store: store z.db: database or disk is full; carrying on"]
    monkeypatch.setattr(harness.store, "heartbeat", written)
    monotonic.t += 2
    harness.clock.advance(2)
    heartbeat.poll()
    assert log[1:] == ["the daemon's record is written to the store again"]
    assert the_record(harness).heartbeat_at == harness.clock.now()


def test_start_removes_this_hosts_stale_records_only(harness: Harness) -> None:
    now, here = harness.clock.now(), socket.gethostname()

    def record(id: str, host: str, heartbeat_at: float) -> DaemonRecord:
        return DaemonRecord(id, host, 1, "dev", "0", heartbeat_at, heartbeat_at, 1, 0, 0, 0, 0, 0.0, "{}")

    harness.store.heartbeat(record("crashed-here", here, now - 60))
    harness.store.heartbeat(record("alive-here", here, now - 1))
    harness.store.heartbeat(record("crashed-elsewhere", here + "-other", now - 60))
    heartbeat = beats(harness, Monotonic(), [])
    heartbeat.start()
    assert [r.id for r in harness.store.daemons()] == [heartbeat.id, "alive-here", "crashed-elsewhere"]

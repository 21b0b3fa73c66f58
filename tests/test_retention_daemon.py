"""The daemon's background retention (daemon.Retention) on a memory store and a fake clock:
when it prunes, how much at a time, what it logs, and a store that refuses."""
from __future__ import annotations

from typing import Any

from tests.store_helpers import apply
from tests.test_store_contract import Clock, instance, started
from zenaton_runtime.daemon import Retention
from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import InstanceStatus
from zenaton_runtime.store import Batch
from zenaton_runtime.store.memory import MemoryStore


class Monotonic:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


class Engine:
    """What Retention needs of the engine: its clock, and landing its commit in flight."""

    def __init__(self, clock: Clock) -> None:
        self.clock = type("C", (), {"now": staticmethod(clock)})()
        self.settled = 0

    def settle(self) -> int:
        self.settled += 1
        return 2


def finished(store: MemoryStore, clock: Clock, ids: list[str], status: InstanceStatus, at: float) -> None:
    for id in ids:
        store.create_instance(instance(id), started(id))
    clock.t = at
    batch = Batch()
    for id in ids:
        batch.update_instance(id, status=status)
    apply(store, batch)


def retention(store: Any, clock: Clock, log: list[str], mono: Monotonic, **kw: Any) -> tuple[Retention, Engine]:
    engine = Engine(clock)
    r = Retention(store, engine, kw.pop("keep", {"completed": 100.0}), log=log.append, monotonic=mono, **kw)  # type: ignore[arg-type]
    return r, engine


def test_it_prunes_in_batches_between_steps_and_faster_while_there_is_a_backlog() -> None:
    clock, mono, log = Clock(), Monotonic(), []
    store = MemoryStore(now=clock)
    finished(store, clock, [f"c{n}" for n in range(7)], InstanceStatus.COMPLETED, 1000.0)
    finished(store, clock, ["k"], InstanceStatus.KILLED, 1000.0)  # no retention for killed: kept
    store.create_instance(instance("r"), started("r"))  # running: kept
    r, engine = retention(store, clock, log, mono, batch=3, interval=2.0, backlog=0.25)
    clock.t = 1050.0
    mono.t += 2.0
    assert r.poll() == 2 and engine.settled == 1  # the engine's commit landed first
    assert log == [] and len(store.list_instances()) == 9  # nothing old enough yet
    clock.t = 1200.0
    mono.t += 1.0
    assert r.poll() == 0 and engine.settled == 1  # not time yet: one clock read
    mono.t += 1.0
    r.poll()
    assert log == ["retention: pruned 3 finished instance(s) (completed 3)"]
    mono.t += 0.25  # a full batch: the next one comes sooner
    r.poll()
    mono.t += 0.25
    r.poll()
    assert log[1:] == ["retention: pruned 3 finished instance(s) (completed 3)",
                       "retention: pruned 1 finished instance(s) (completed 1)"]
    mono.t += 0.25
    r.poll()
    assert len(log) == 3 and r.pruned == 7  # back to the interval
    assert sorted(i.id for i in store.list_instances()) == ["k", "r"]


def test_without_retention_it_does_nothing() -> None:
    clock, mono, log = Clock(), Monotonic(), []
    store = MemoryStore(now=clock)
    finished(store, clock, ["c"], InstanceStatus.COMPLETED, 10.0)
    r, engine = retention(store, clock, log, mono, keep={})
    clock.t, mono.t = 1e9, mono.t + 1e6
    assert r.poll() == 0 and engine.settled == 0 and store.get_instance("c") is not None


def test_a_store_that_refuses_is_logged_once_and_tried_again() -> None:
    clock, mono, log = Clock(), Monotonic(), []
    store = MemoryStore(now=clock)
    finished(store, clock, ["c"], InstanceStatus.COMPLETED, 10.0)
    real = store.prune

    def refuse(*args: Any, **kw: Any) -> int:
        raise StoreError("store z.db: database or disk is full")

    store.prune = refuse  # type: ignore[method-assign]
    r, _ = retention(store, clock, log, mono)
    clock.t = 1000.0
    for _ in range(3):
        mono.t += 2.0
        r.poll()
    assert log == ["retention: cannot prune finished instances: store z.db: database or disk is full; trying again later"]
    store.prune = real  # type: ignore[method-assign]
    mono.t += 2.0
    r.poll()
    assert log[-1] == "retention: pruned 1 finished instance(s) (completed 1)" and store.get_instance("c") is None


def test_a_batch_holds_what_fits_in_its_time_budget() -> None:
    clock, mono, log = Clock(), Monotonic(), []
    store = MemoryStore(now=clock)
    finished(store, clock, [f"c{n}" for n in range(400)], InstanceStatus.COMPLETED, 10.0)
    timer = Monotonic()
    real = store.prune

    def slow_prune(ids: Any, before: Any = None) -> int:
        gone = real(ids, before)
        timer.t += gone * 0.0004  # 0.4 ms an instance: 50 fit in 20 ms
        return gone

    store.prune = slow_prune  # type: ignore[method-assign]
    r, _ = retention(store, clock, log, mono, batch=500, budget=0.02, timer=timer)
    clock.t = 1000.0
    sizes = []
    for _ in range(4):
        mono.t += 2.0
        r.poll()
        sizes.append(int(log[-1].split("pruned ")[1].split()[0]))
    assert sizes == [100, 50, 50, 50]  # the first batch before its cost is known, then the budget's

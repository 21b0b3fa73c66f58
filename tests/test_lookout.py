"""The engine skips its look for new work only while nothing can have brought any.

Each case makes work arrive one way (another connection, time, the engine's own commits,
a full worker pool) and checks it is picked up with no other nudge; the first test checks
the skipping itself, by counting the store's look-up queries.
"""
from __future__ import annotations

import math

import pytest
from flowlib.extra import Nap, ZeroWait  # type: ignore[import-not-found]
from flowlib.workflows import Fanout, Parent, RetryFlow, Sequential, Sleeper  # type: ignore[import-not-found]

from zenaton_runtime.client.control import Control
from zenaton_runtime.store import open_store
from zenaton_runtime.pool.inline import InlineRunner

from .harness import Harness


@pytest.fixture(autouse=True)
def no_safety_net(monkeypatch):
    """Without the periodic full look, only the hints under test can find the work."""
    monkeypatch.setattr("zenaton_runtime.engine.lookout.SAFETY", math.inf)


class CountingStore:
    """Counts the look-up queries of the store it wraps."""

    def __init__(self, store) -> None:
        self._store = store
        self.looks = 0
        self.late_claims = 0  # tasks claimed in a commit that did not decide anything

    def commit_step(self, batch, now, limit, **options):
        pending = self._store.commit_step(batch, now, limit, **options)
        if not batch.ops:
            self.late_claims += len(pending.wait())
        return pending

    def ready_instances(self, limit):
        self.looks += 1
        return self._store.ready_instances(limit)

    def __getattr__(self, name):
        return getattr(self._store, name)


class SettableRunner:
    """A runner whose free slots the test sets (a pool whose workers are all busy, or not)."""

    def __init__(self, inner) -> None:
        self.inner, self.slots = inner, 1

    def free_slots(self) -> int:
        return self.slots

    def __getattr__(self, name):
        return getattr(self.inner, name)


class OneSlotRunner(InlineRunner):
    """Runs one attempt per step at most: queued tasks must wait for the slot."""

    def free_slots(self) -> int:
        return 0 if self._finished else 1


def test_steps_with_only_task_results_do_not_look_for_work(sqlite_harness: Harness):
    h = sqlite_harness
    counting = CountingStore(h.store)
    h.engine.store = counting
    h.engine.lookout.store = counting
    instance_id = h.dispatch(Sequential(1))
    h.run()
    assert h.status(instance_id) == "completed"
    looks_for_one = counting.looks
    assert looks_for_one <= 2  # the first step, and the one after the step that started it

    h.engine.run_until_idle()  # idle steps with no change anywhere: no query
    assert counting.looks == looks_for_one
    assert counting.late_claims == 0  # each task was claimed in the commit that scheduled it


def test_a_dispatch_through_another_connection_is_seen_by_the_next_step(tmp_path):
    h = Harness(f"sqlite:///{tmp_path}/z.db")
    other = open_store(f"sqlite:///{tmp_path}/z.db", now=h.clock.now)
    try:
        h.run()  # idle: the engine has looked once and has no reason to look again
        instance = Control(other, h.project.codec, "dev").dispatch(Sequential(2))
        h.run()  # the clock has not moved: only the store's change counter can tell
        assert h.status(instance.id) == "completed"
        assert h.result(instance.id) == 13
    finally:
        other.close()
        h.close()


def test_a_dispatch_on_the_same_connection_is_seen(harness: Harness):
    harness.run()
    instance_id = harness.dispatch(Sequential(3))
    harness.run()
    assert harness.status(instance_id) == "completed"


def test_a_timer_is_seen_when_the_clock_reaches_it(harness: Harness):
    instance_id = harness.dispatch(Sleeper(2))
    harness.run()
    harness.advance(2 * 86400 - 1)
    assert harness.status(instance_id) == "running"
    harness.advance(1)
    assert harness.status(instance_id) == "completed"


def test_a_timer_decided_in_a_step_with_only_a_result_is_seen(harness: Harness):
    instance_id = harness.dispatch(Nap())
    harness.run()
    harness.advance(29)
    assert harness.status(instance_id) == "running"
    harness.advance(1)
    assert harness.status(instance_id) == "completed"


def test_a_retry_is_seen_when_its_delay_is_over(harness: Harness):
    instance_id = harness.dispatch(RetryFlow(1))  # fails once, retried 5 s later
    harness.run()
    harness.advance(5)
    harness.advance(5)
    assert harness.status(instance_id) == "completed"


def test_a_child_completing_wakes_its_parent(harness: Harness):
    instance_id = harness.dispatch(Parent())
    harness.run()
    assert harness.status(instance_id) == "completed"


def test_tasks_left_queued_by_a_full_pool_run_when_slots_free_up(harness: Harness):
    h = harness
    h.engine.runner = OneSlotRunner(h.project, runtime_factory=h._task_runtime)
    instance_id = h.dispatch(Fanout(5))
    h.run()
    assert h.status(instance_id) == "completed"
    assert h.result(instance_id) == [100, 101, 102, 103, 104]


def test_a_timer_due_at_once_is_seen(harness: Harness):
    instance_id = harness.dispatch(ZeroWait())
    harness.run()
    assert harness.status(instance_id) == "completed"


def test_a_task_found_while_every_worker_is_busy_runs_when_one_frees(harness: Harness):
    from flowlib.tasks import Add  # type: ignore[import-not-found]

    h = harness
    h.engine.runner = runner = SettableRunner(h.runner)
    h.run()  # an idle look: nothing to claim
    runner.slots = 0
    instance_id = h.dispatch(Add(1, 2))
    h.run()  # the look finds the task; no worker can take it
    runner.slots = 1
    h.run()
    assert h.status(instance_id) == "completed"


class DelayedStore:
    """What the lookout asks of a store shared by several daemons, as a daemon after the first
    sees it: others' changes are looked at ``delay`` seconds after they were noticed."""

    def __init__(self, delay: float) -> None:
        self.moves, self.delay = 0, delay

    def changes(self) -> object:
        return self.moves

    def look_delay(self, since: object) -> float:
        return self.delay

    def next_due(self, after: float) -> None:
        return None


def test_a_change_is_looked_at_once_the_stores_look_delay_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    from zenaton_runtime.engine import lookout as lookout_module

    clock = [1000.0]
    monkeypatch.setattr(lookout_module.time, "monotonic", lambda: clock[0])
    store = DelayedStore(0.5)
    lookout = lookout_module.Lookout(store)  # type: ignore[arg-type]
    assert lookout.must_look(0.0)  # the first look
    assert not lookout.must_look(0.0)
    assert lookout.change_due_in() == math.inf
    store.moves += 1  # a client dispatched
    clock[0] += 0.125
    assert not lookout.must_look(0.0)
    assert lookout.change_due_in() == 0.5  # the daemon's idle wait ends then
    store.moves += 1  # more come meanwhile: the same look takes them in
    clock[0] += 0.25
    assert not lookout.must_look(0.0) and lookout.change_due_in() == 0.25
    clock[0] += 0.25
    assert lookout.must_look(0.0)
    assert lookout.change_due_in() == math.inf and not lookout.must_look(0.0)
    store.delay = 0.0  # the first daemon (or one alone): at once
    store.moves += 1
    assert lookout.must_look(0.0)

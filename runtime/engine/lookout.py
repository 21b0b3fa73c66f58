"""When an engine step must look in the store for new work, and when it may skip the queries.

New work reaches the store in three ways:
- other writers (scripts, the CLI, tasks, another connection) dispatch, post to an inbox or
  add a schedule: ``store.changes()`` moves (looked at ``store.look_delay()`` after it was
  noticed: at once, but for the daemons after the first on a shared store);
- time passes: a timer, a task retry or a schedule falls due (``next_due``);
- the engine's own commits: a child instance created, an inbox item posted to a parent, a task
  re-queued now, or more due work than one step takes (``again``).
A step that sees none of these only collects its workers' results, which is most steps under
load: the look (schedules, timers, ready instances, the claim query) costs more than the step.
Tasks the engine added are claimed in the same transaction; ``claimable`` says some may be left.
A full look at least every ``SAFETY`` seconds (monotonic time, whatever the wall clock does)
bounds what any case missed here could cost: a delay, never a lost instance.
"""

from __future__ import annotations

import math
import time

from zenaton_runtime.store import Batch, Store

SAFETY = 1.0


class Lookout:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: object = object()  # store.changes() at the last look
        self._last = -math.inf  # the engine clock's time of the last look (timers are on that clock)
        self._looked_at = -math.inf  # time.monotonic() of the last look: the safety net's clock
        self._next_due: float | None = None  # earliest timer, retry or schedule; None: read it when needed
        self.again = True  # the engine's own writes (or a full step) left work behind
        self.claimable = True  # queued tasks may be waiting for a free worker
        self.safety = SAFETY
        self._noticed: float | None = None  # time.monotonic() when changes() was seen moving, not looked at yet

    def wants_look(self, now: float, settled: bool = True) -> bool:
        """Whether ``must_look(now)`` would look, without marking anything. With a commit still
        in flight (not ``settled``) the store cannot say when the next timer falls due: unless
        that is known already, the answer is yes."""
        if self.again or self._changed() or time.monotonic() - self._looked_at >= self.safety:
            return True
        if not settled and self._next_due is None:
            return True
        return now >= self.next_due()

    def must_look(self, now: float) -> bool:
        if not self.wants_look(now):
            return False
        self._seen, self._last, self.again, self._next_due = self.store.changes(), now, False, None
        self._looked_at, self._noticed = time.monotonic(), None
        return True

    def _changed(self) -> bool:
        """Other writers wrote since the last look, and the store's look delay has passed."""
        if self.store.changes() == self._seen:
            return False
        delay = self.store.look_delay(self._seen)
        if delay <= 0:
            return True
        if self._noticed is None:
            self._noticed = time.monotonic()
        return time.monotonic() - self._noticed >= delay

    def change_due_in(self) -> float:
        """Seconds until a change seen but not looked at yet is looked at (inf: none waits)."""
        if self._noticed is None:
            return math.inf
        return max(0.0, self._noticed + self.store.look_delay(self._seen) - time.monotonic())

    def next_due(self) -> float:
        """When a timer, retry or schedule the last look could not see falls due (inf: none)."""
        if self._next_due is None:
            due = self.store.next_due(self._last)
            self._next_due = math.inf if due is None else due
        return self._next_due

    def only_added(self, looked: bool, batch: Batch) -> bool:
        """Nothing was claimable before this batch, and it re-queues nothing: what it adds is all
        there is to claim."""
        return not (looked or self.claimable or batch.requeues)

    def claim_limit(self, looked: bool, batch: Batch, free_slots: int) -> int:
        return free_slots if looked or self.claimable or batch.queues_tasks else 0

    def after_step(self, batch: Batch, now: float, looked: bool, full: bool, limit: int, claimed: int) -> None:
        """What the step's commit (``batch``, ``claimed`` of ``limit`` tasks) leaves to look at.
        Tasks the batch queued for now were seen by its own claim unless ``limit`` was 0."""
        self.again = self.again or full or batch.makes_work
        if limit > 0:
            self.claimable = claimed >= limit  # fewer than asked: nothing claimable was left
        elif looked or batch.queues_tasks:
            self.claimable = True  # queued tasks no worker could take
        for when in batch.due_times:
            self._due(when, now)

    def _due(self, when: float, now: float) -> None:
        if when <= now:
            self.again = True  # due already: next_due() only counts what falls due after a look
        elif self._next_due is not None:
            self._next_due = min(self._next_due, when)

    def store_failed(self) -> None:
        self.again = True

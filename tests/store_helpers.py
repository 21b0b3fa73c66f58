"""Store operations only tests need, written on the Store protocol (so they hold for every backend)."""

from __future__ import annotations

import math

from zenaton_runtime.models import Schedule, TaskRecord
from zenaton_runtime.store import Batch, Store


def apply(store: Store, batch: Batch) -> None:
    """Every op of the batch in one transaction, claiming nothing."""
    store.commit_step(batch, store.now(), 0).wait()


def claim_tasks(store: Store, now: float, limit: int) -> list[TaskRecord]:
    """Queued tasks due by ``now`` of running instances become running (attempts + 1)."""
    return store.commit_step(Batch(), now, limit).wait()


def next_wakeup(store: Store) -> float | None:
    """The earliest timer, claimable retry or schedule fire."""
    return store.next_due(-math.inf)


def get_schedule(store: Store, schedule_id: str) -> Schedule | None:
    return next((s for s in store.list_schedules() if s.id == schedule_id), None)

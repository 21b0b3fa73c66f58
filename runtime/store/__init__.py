"""The Store protocol: records and bytes, nothing that knows a Workflow class.

One module per backend (``memory``, ``sqlite``); ``open_store(url)`` picks one.
Every write the daemon makes for a step goes through ``apply(batch)``, which is
atomic: all of a batch is durable, or none of it.

Writers:
- clients (scripts, the CLI, tasks) create instances and ``post`` inbox items;
- only the daemon appends to journals, changes statuses, claims tasks and timers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zenaton_runtime.models import (
    ArchivedRun,
    Entry,
    InboxItem,
    Instance,
    InstanceStatus,
    JournalEntry,
    Schedule,
    TaskRecord,
    TaskStatus,
    Timer,
)

UNSET: Any = object()


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class NewEntry:
    """A journal entry to append; the store assigns seq and created_at."""

    instance_id: str
    type: Entry
    position: int | None = None
    name: str | None = None
    data: str | None = None
    properties: str | None = None


@dataclass
class Batch:
    """Writes the daemon gathers and the store applies in one transaction, in order."""

    ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    # What the ops mean for the engine's next look (runtime/lookout.py), noted as they are added:
    queues_tasks: bool = False  # some op adds or re-queues a task: worth a claim in the same commit
    requeues: bool = False  # some op puts an existing task back in the queue
    makes_work: bool = False  # a new instance, an inbox item or a rewind: work for a later step
    due_times: list[float] = field(default_factory=list)  # timers and retries it sets

    def _add(self, op: str, *args: Any, **kwargs: Any) -> None:
        self.ops.append((op, args, kwargs))

    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        """A child instance. Its custom id taken meanwhile (since the step checked it) fails the
        batch with a StoreError: the step is decided again, and then refuses the child."""
        self._add("create_instance", instance, started, task)
        self.queues_tasks = self.queues_tasks or task is not None
        self.makes_work = True

    def append(self, entry: NewEntry) -> None:
        self._add("append", entry)

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        """Change status / properties / error (UNSET leaves a field alone); sets updated_at."""
        self._add("update_instance", instance_id, status=status, properties=properties, error=error)

    def add_task(self, task: TaskRecord) -> None:
        self._add("add_task", task)
        self.queues_tasks = True

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        self._add("update_task", task_id, status=status, retry_index=retry_index, run_at=run_at)
        if status is TaskStatus.QUEUED:
            self.queues_tasks = self.requeues = True
            if run_at is not None:
                self.due_times.append(run_at)

    def cancel_tasks(self, instance_id: str) -> None:
        """Queued and running tasks of the instance become cancelled."""
        self._add("cancel_tasks", instance_id)

    def add_timer(self, timer: Timer) -> None:
        self._add("add_timer", timer)
        self.due_times.append(timer.fire_at)

    def delete_timer(self, instance_id: str, position: int) -> None:
        self._add("delete_timer", instance_id, position)

    def delete_timers(self, instance_id: str) -> None:
        self._add("delete_timers", instance_id)

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        """Delete these inbox items; the instance stays ready only if others remain."""
        self._add("consume_inbox", instance_id, list(item_ids))

    def post(self, instance_id: str, kind: str, name: str | None = None, data: str | None = None) -> None:
        """An inbox item for another instance (a child telling its parent it finished)."""
        self._add("post", instance_id, kind, name, data)
        self.makes_work = True

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        """Move the journal entries after ``keep_through_seq`` to the archive as the current run
        (1 + the newest archived run), so that the next entry appended gets ``keep_through_seq + 1``;
        cancel the instance's unfinished tasks (queued, running, failed) and delete its timers at
        positions >= ``position``; detach the child instances it waits on at those positions (their
        ``parent_position`` becomes None: their results no longer reach it). Statuses are left alone.
        """
        self._add("rewind", instance_id, keep_through_seq, position)
        self.makes_work = True

    def extend(self, other: Batch) -> None:
        self.ops.extend(other.ops)
        self.queues_tasks = self.queues_tasks or other.queues_tasks
        self.requeues = self.requeues or other.requeues
        self.makes_work = self.makes_work or other.makes_work
        self.due_times += other.due_times

    def __len__(self) -> int:
        return len(self.ops)


def create_child(create: Callable[..., bool], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A batch's ``create_instance`` op on a backend's ``create``. A custom id taken after the
    step checked it fails the batch with a StoreError: the step is decided again, and refuses."""
    from zenaton_runtime.errors import DuplicateInstanceError, StoreError

    try:
        create(*args, skip_duplicate=False, **kwargs)
    except DuplicateInstanceError as e:
        raise StoreError(f"{e}: taken after the step decided; it is decided again") from e


class Store(Protocol):
    """What the engine needs of a backend. Times are unix seconds (float, UTC)."""

    now: Callable[[], float]

    # -- clients ---------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        """Insert an instance, its first journal entry and (standalone task) its task, atomically.

        A workflow instance is created ready. Raises DuplicateInstanceError when an
        unfinished workflow instance with the same env, name and custom id exists.
        """

    def create_instances(self, records: list[tuple[Instance, NewEntry, TaskRecord | None]]) -> list[bool]:
        """Many instances in one transaction (bulk dispatch); False where a custom id was taken."""

    def get_instance(self, instance_id: str) -> Instance | None: ...

    def get_instances(self, instance_ids: list[str]) -> dict[str, Instance]:
        """The existing ones among these ids, in one read."""

    def list_instances(
        self,
        *,
        env: str | None = None,
        name: str | None = None,
        status: InstanceStatus | None = None,
        custom_id: str | None = None,
        kind: str | None = None,
        id_prefix: str | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
    ) -> list[Instance]:
        """Matching instances, newest first."""

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        """Entries with seq > after_seq, in seq order."""

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """All the instance's tasks in creation order (for inspection and tests)."""

    def open_tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """The instance's queued, running and failed tasks in creation order (what the daemon needs)."""

    def archive(self, instance_id: str) -> list[ArchivedRun]:
        """The runs rewinds archived (their entries past the cut), oldest run first."""

    def post(self, instance_id: str, kind: str, name: str | None = None, data: str | None = None) -> int:
        """Add an inbox item and mark the instance ready; returns the item id."""

    def inbox(self, instance_id: str) -> list[InboxItem]:
        """Unconsumed inbox items of the instance, oldest first."""

    def inboxes(self, instance_ids: list[str]) -> dict[str, list[InboxItem]]:
        """``inbox`` of each of these instances, in one read."""

    def counts(self) -> dict[str, int]:
        """Number of instances by status, and "tasks_queued"."""

    # -- daemon ----------------------------------------------------------
    def ready_instances(self, limit: int) -> list[str]:
        """Ids of instances marked ready, oldest first."""

    def claim_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        """Queued tasks with run_at <= now of running instances become running (attempts + 1)."""

    def due_timers(self, now: float, limit: int) -> list[Timer]: ...

    def next_wakeup(self) -> float | None:
        """The earliest timer fire_at or run_at of a claimable queued task, or None."""

    def next_due(self, after: float) -> float | None:
        """The earliest time later than ``after`` when a timer, a claimable queued task or a
        schedule falls due, or None: what a look at time ``after`` could not have seen."""

    def apply(self, batch: Batch) -> None:
        """Apply every op of the batch in one transaction."""

    def apply_and_claim(self, batch: Batch, now: float, limit: int, *, only_added: bool = False) -> list[TaskRecord]:
        """``apply(batch)`` then ``claim_tasks(now, limit)`` in one transaction (one commit a step).
        ``only_added`` promises that no task was claimable before the batch: a backend may then
        claim the tasks the batch adds without looking for others."""

    def settle(self) -> None:
        """Wait for a commit still in flight (a backend that commits in the background, such as
        SQLite's ``apply_and_claim_in_background``); reads show it from then on."""

    def recover(self) -> int:
        """Put running tasks back to queued (after a crash); return how many."""

    def changes(self) -> object:
        """A value that differs between two calls when anything other than ``apply_and_claim``
        and ``claim_tasks`` wrote to the store in between, in this process or another: a client's
        dispatch, an inbox item, a schedule. The engine skips its look for new work while it
        stays the same (see runtime/lookout.py)."""

    def close(self) -> None: ...

    # -- cron schedules --------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> None: ...

    def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    def list_schedules(self, env: str | None = None) -> list[Schedule]:
        """Schedules (of one env, or all), soonest fire first."""

    def delete_schedule(self, schedule_id: str) -> bool:
        """True if it existed."""

    def due_schedules(self, now: float, limit: int) -> list[Schedule]: ...

    def next_schedule_fire(self) -> float | None: ...

    def fire_schedule(
        self,
        schedule_id: str,
        expected_fire: float,
        next_fire: float,
        now: float,
        records: tuple[Instance, NewEntry, TaskRecord | None] | None,
    ) -> bool:
        """In one transaction: create the instance (or, with None, count a skip) and move the
        schedule to ``next_fire``; False (nothing written) if its fire time is no longer
        ``expected_fire``. DuplicateInstanceError rolls everything back."""


def open_store(url: str, *, now: Callable[[], float] = time.time, durability: str = "full") -> Store:
    """``memory://`` or ``sqlite:///path/to/file.db`` (a relative path is relative to cwd)."""
    from zenaton_runtime.errors import ConfigError

    if url.startswith("memory:"):
        from zenaton_runtime.store.memory import MemoryStore

        return MemoryStore(now=now)
    if url.startswith("sqlite:///"):
        from zenaton_runtime.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :], now=now, durability=durability)
    raise ConfigError(f"unsupported store url {url!r} (use sqlite:///path or memory://)")

"""The writes of one engine step: typed batch ops, gathered in a Batch, applied atomically.

Each op is a small record; a backend interprets every op in one place (a table keyed by the
op's type). ``Batch`` builds the list and notes, as ops are added, what they mean for the
engine's next look for work (``engine/lookout.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zenaton_runtime.models import Entry, InboxKind, Instance, InstanceStatus, Schedule, TaskRecord, TaskStatus, Timer

UNSET: Any = object()  # "leave this field alone" in UpdateInstance

# The records below are built on every step: plain slotted dataclasses, not frozen (3x cheaper).


@dataclass(slots=True)
class NewEntry:
    """A journal entry to append; the store assigns seq and created_at."""

    instance_id: str
    type: Entry
    position: int | None = None
    name: str | None = None
    data: str | None = None
    properties: str | None = None


@dataclass(slots=True)
class CreateInstance:
    """A child instance with its first entry (and, for a standalone task, its task). Its custom id
    taken since the step checked it fails the batch with a StoreError: the step is decided again."""

    instance: Instance
    started: NewEntry
    task: TaskRecord | None = None


@dataclass(slots=True)
class Append:
    entry: NewEntry


@dataclass(slots=True)
class UpdateInstance:
    """Change status / properties / error (UNSET leaves a field alone); sets updated_at."""

    instance_id: str
    status: InstanceStatus | None = None
    properties: Any = UNSET
    error: Any = UNSET


@dataclass(slots=True)
class AddTask:
    task: TaskRecord


@dataclass(slots=True)
class UpdateTask:
    task_id: str
    status: TaskStatus | None = None
    retry_index: int | None = None
    run_at: float | None = None


@dataclass(slots=True)
class CancelTasks:
    """The instance's queued and running tasks become cancelled (failed ones stay failed)."""

    instance_id: str


@dataclass(slots=True)
class AddTimer:
    """Replaces any timer at the same instance and position."""

    timer: Timer


@dataclass(slots=True)
class DeleteTimer:
    instance_id: str
    position: int


@dataclass(slots=True)
class DeleteTimers:
    instance_id: str


@dataclass(slots=True)
class ConsumeInbox:
    """Delete these inbox items; the instance stays ready only if others remain."""

    instance_id: str
    item_ids: list[int]


@dataclass(slots=True)
class Post:
    """An inbox item for an instance: a child telling its parent it finished, or what a workflow
    sent another instance (or itself): an event, a pause, a resume, a kill."""

    instance_id: str
    kind: InboxKind
    name: str | None = None
    data: str | None = None


@dataclass(slots=True)
class Rewind:
    """Move the journal entries after ``keep_through_seq`` to the archive as the current run (1 +
    the newest archived run), so that the next entry appended gets ``keep_through_seq + 1``; cancel
    the instance's open tasks (queued, running, failed) and delete its timers at positions >=
    ``position``; detach the child instances it waits on at those positions (their
    ``parent_position`` becomes None: their results no longer reach it). Statuses are left alone."""

    instance_id: str
    keep_through_seq: int
    position: int


@dataclass(slots=True)
class AddSchedule:
    """A cron schedule a workflow added (``schedule()`` inside ``handle()``), as a client's
    ``add_schedule`` adds one; its id is new: a schedule with the same id fails the batch."""

    schedule: Schedule


Op = (
    CreateInstance
    | Append
    | UpdateInstance
    | AddTask
    | UpdateTask
    | CancelTasks
    | AddTimer
    | DeleteTimer
    | DeleteTimers
    | ConsumeInbox
    | Post
    | Rewind
    | AddSchedule
)
OP_TYPES: tuple[type[Op], ...] = (
    CreateInstance,
    Append,
    UpdateInstance,
    AddTask,
    UpdateTask,
    CancelTasks,
    AddTimer,
    DeleteTimer,
    DeleteTimers,
    ConsumeInbox,
    Post,
    Rewind,
    AddSchedule,
)


@dataclass
class Batch:
    """Writes the engine gathers and the store applies in one transaction, in order."""

    ops: list[Op] = field(default_factory=list)
    # What the ops mean for the engine's next look (engine/lookout.py), noted as they are added:
    queues_tasks: bool = False  # some op adds or re-queues a task: worth a claim in the same commit
    requeues: bool = False  # some op puts an existing task back in the queue
    makes_work: bool = False  # a new instance, an inbox item or a rewind: work for a later step
    due_times: list[float] = field(default_factory=list)  # timers, retries and schedules it sets
    posts_to: list[str] = field(default_factory=list)  # instances it posts inbox items to
    rewinds: bool = False  # it cuts a journal: it also writes to children named only in the store

    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        self.ops.append(CreateInstance(instance, started, task))
        self.queues_tasks = self.queues_tasks or task is not None
        self.makes_work = True

    def append(self, entry: NewEntry) -> None:
        self.ops.append(Append(entry))

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        self.ops.append(UpdateInstance(instance_id, status, properties, error))

    def add_task(self, task: TaskRecord) -> None:
        self.ops.append(AddTask(task))
        self.queues_tasks = True

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        self.ops.append(UpdateTask(task_id, status, retry_index, run_at))
        if status is TaskStatus.QUEUED:
            self.queues_tasks = self.requeues = True
            if run_at is not None:
                self.due_times.append(run_at)

    def cancel_tasks(self, instance_id: str) -> None:
        self.ops.append(CancelTasks(instance_id))

    def add_timer(self, timer: Timer) -> None:
        self.ops.append(AddTimer(timer))
        self.due_times.append(timer.fire_at)

    def delete_timer(self, instance_id: str, position: int) -> None:
        self.ops.append(DeleteTimer(instance_id, position))

    def delete_timers(self, instance_id: str) -> None:
        self.ops.append(DeleteTimers(instance_id))

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        self.ops.append(ConsumeInbox(instance_id, list(item_ids)))

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> None:
        self.ops.append(Post(instance_id, kind, name, data))
        self.posts_to.append(instance_id)
        self.makes_work = True

    def add_schedule(self, schedule: Schedule) -> None:
        self.ops.append(AddSchedule(schedule))
        self.due_times.append(schedule.next_fire)

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        self.ops.append(Rewind(instance_id, keep_through_seq, position))
        self.rewinds = self.makes_work = True

    def extend(self, other: Batch) -> None:
        self.ops.extend(other.ops)
        self.queues_tasks = self.queues_tasks or other.queues_tasks
        self.requeues = self.requeues or other.requeues
        self.makes_work = self.makes_work or other.makes_work
        self.rewinds = self.rewinds or other.rewinds
        self.due_times += other.due_times
        self.posts_to += other.posts_to

    def __len__(self) -> int:
        return len(self.ops)

"""Records the store keeps: plain frozen data, nothing that knows a Workflow class."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class TextEnum(str, enum.Enum):
    """A str enum that prints as its value (in f-strings too, on every Python version)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class InstanceStatus(TextEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    KILLED = "killed"
    FAILED = "failed"  # standalone tasks only

    @property
    def finished(self) -> bool:
        return self in (InstanceStatus.COMPLETED, InstanceStatus.KILLED, InstanceStatus.FAILED)


# Each status set is defined here, once; the SQLite backend writes its SQL from these tuples.
UNFINISHED = (InstanceStatus.RUNNING, InstanceStatus.PAUSED)  # may still run: holds its custom id
# What a pause, resume or kill needs of its instance's status, whoever asks (a client or a workflow).
CONTROLLABLE: dict[str, tuple[InstanceStatus, ...]] = {
    "pause": (InstanceStatus.RUNNING,),
    "resume": (InstanceStatus.PAUSED,),
    "kill": (InstanceStatus.RUNNING, InstanceStatus.PAUSED, InstanceStatus.FAILED),
}


class Kind(TextEnum):
    WORKFLOW = "workflow"
    TASK = "task"


class TaskStatus(TextEnum):
    QUEUED = "queued"  # waiting for run_at and a free worker
    RUNNING = "running"  # claimed by the daemon, an attempt is in flight
    DONE = "done"  # succeeded; its result is in the journal
    FAILED = "failed"  # failed for good; waits for a manual retry
    CANCELLED = "cancelled"  # its instance was killed


OPEN_TASKS = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.FAILED)  # not done with: a rewind cancels them
LIVE_TASKS = (TaskStatus.QUEUED, TaskStatus.RUNNING)  # will run or runs: a kill cancels them


class InboxKind(TextEnum):
    """What an inbox item asks of its instance."""

    EVENT = "event"  # name=event class; the encoded event
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    KILL = "kill"
    REWIND = "rewind"  # {"position", "requested", "seq"}
    CHILD_COMPLETED = "child_completed"  # {"position", "id", "result": encoded}
    CHILD_KILLED = "child_killed"  # {"position", "id"}: look in the store for the killed child
    UNKNOWN = "unknown"  # stored by something newer than this engine: consumed and ignored


class Entry(TextEnum):
    """Journal entry types, and what each one's ``data`` holds (JSON text)."""

    STARTED = "started"  # the encoded workflow or task as dispatched
    TASK_SCHEDULED = "task_scheduled"  # position, name=task class; {"task_id", "group", "task": encoded as sent}
    # An attempt (position 0 for a standalone task): {"attempt", "stdout", "stderr", "started_at",
    # "finished_at" (epoch seconds), "task": encoded as handle() left it (only if it changed it), ...}
    TASK_COMPLETED = "task_completed"  # ... "result": encoded
    TASK_FAILED = "task_failed"  # ... "error", "retry_in"
    WAIT_STARTED = "wait_started"  # position, name=event class or "Wait"; {"event", "fire_at"}
    TIMER_FIRED = "timer_fired"  # position
    DISPATCHED = "dispatched"  # position, name=job class; {"id", "kind", "wait"}
    CHILD_COMPLETED = "child_completed"  # position; {"id", "result": encoded}
    EVENT_RECEIVED = "event_received"  # name=event class; the encoded event
    # A workflow's call to another instance (or itself), decided and answered in one entry:
    # "refused" is null or {"class", "message"}, the error raised inside handle() (see replay/calls.py).
    EVENT_SENT = "event_sent"  # position, name=target workflow class; {"custom_id", "id", "event", "refused"}
    CONTROL_SENT = "control_sent"  # position, name=target workflow class; {"action", "custom_id", "id", "refused"}
    FOUND = "found"  # position, name=target workflow class; {"custom_id", "id", "status", "version", "properties"}
    SCHEDULE_ADDED = "schedule_added"  # position, name=job class; {"schedule": {...} or null, "refused"}
    PAUSED = "paused"
    RESUMED = "resumed"
    RETRIED = "retried"
    KILLED = "killed"
    ERROR = "error"  # the error object; the instance is paused (or failed, for a task)
    COMPLETED = "completed"  # {"result": encoded}
    REWOUND = "rewound"  # {"to_step", "run", "archived", "request"}: the entries past the cut went to the archive
    REWIND_REFUSED = "rewind_refused"  # {"request", "to_step", "reason"}: the daemon did not rewind


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Instance:
    id: str
    kind: Kind
    name: str  # class name; for a Version, the Version class
    version: str | None  # the implementation class of a Version, else None
    custom_id: str | None
    env: str
    status: InstanceStatus
    data: str  # encoded object as dispatched (workflow or task)
    properties: str | None  # encoded properties after the latest step
    error: str | None  # JSON text: {"class", "message", "traceback", ...}
    parent_id: str | None
    parent_position: int | None  # the parent waits on this position when it executed us
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class JournalEntry:
    instance_id: str
    seq: int  # 1, 2, 3 ... per instance, assigned by the store
    type: Entry
    position: int | None
    name: str | None
    data: str | None  # JSON text
    properties: str | None  # encoded properties after this entry, when they changed
    created_at: float


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class TaskRecord:
    """A unit of work for the task pool: one step of a workflow or one standalone task."""

    id: str
    instance_id: str
    position: int  # the step's position; 0 for a standalone task
    name: str
    data: str  # encoded task object
    status: TaskStatus
    retry_index: int  # 0 on the first attempt, n on the n-th automatic retry
    attempts: int  # attempts started so far, manual retries included
    run_at: float
    created_at: float


@dataclass(frozen=True)
class InboxItem:
    """A request from outside the daemon: an event or a control intent."""

    id: int
    instance_id: str
    kind: InboxKind
    name: str | None
    data: str | None
    created_at: float
    unknown_kind: str | None = None  # as stored, when this engine does not know it (kind is UNKNOWN)

    @property
    def label(self) -> str:
        """The kind as stored, for the log."""
        return self.unknown_kind or self.kind.value


@dataclass(frozen=True)
class ArchivedRun:
    """The journal entries a rewind moved out of run ``run``: its tail, from the cut on."""

    instance_id: str
    run: int  # 1 is the original run; each rewind starts the next one
    archived_at: float
    entries: tuple[JournalEntry, ...]  # in seq order, seqs as they were in the journal


@dataclass(frozen=True)
class Timer:
    instance_id: str
    position: int
    fire_at: float


@dataclass(frozen=True)
class Schedule:
    """A cron schedule: the daemon dispatches a new instance of the job at every fire time."""

    id: str
    env: str
    kind: Kind
    name: str
    custom_id: str | None  # a workflow's id(): a fire is skipped while that instance runs
    data: str  # the encoded job, as dispatched at each fire
    cron: str
    timezone: str
    next_fire: float
    last_fire: float | None
    fires: int
    skips: int
    last_skip: float | None
    created_at: float


HEARTBEAT_INTERVAL = 2.0  # seconds between two writes of a running daemon's record
DAEMON_STALE_AFTER = 10.0  # seconds without a heartbeat after which a record reads as stale, not alive


@dataclass(frozen=True)
class DaemonRecord:
    """A daemon as it publishes itself in the store (``Store.heartbeat``): written when it
    starts, again every ``HEARTBEAT_INTERVAL`` seconds while it runs, removed when it stops
    cleanly. A record whose heartbeat is older than ``DAEMON_STALE_AFTER`` is a daemon that
    died (or hangs): shown as stale.

    ``stats`` is JSON text, every counter since the daemon started::

        {"steps": 1200, "commits": 400, "instances_lost": 0,
         "task_attempts": {"completed": 390, "failed": 2, "retried": 8},
         "commit_seconds": {"le": [0.001, 0.0025, ..., 5.0],
                            "buckets": [12, 250, ..., 400], "count": 400, "sum": 1.87}}

    ``steps``: instance steps committed (one instance's inputs of one engine step, decided and
    written); ``instances_lost``: instances another daemon took over while this one held them
    (PostgreSQL: its lease ran out); ``commits``: the engine's write transactions (a commit holds the steps of every
    instance of an engine step, and claims tasks). ``task_attempts``: attempts whose outcome a
    commit recorded: completed, failed for good, or failed and retried automatically.
    ``commit_seconds``: a histogram of the time from ``commit_step`` being called until the
    engine had it landed, cumulative as Prometheus's: ``buckets[i]`` commits took at most
    ``le[i]`` seconds, ``count`` is the ``+Inf`` bucket, ``sum`` the total seconds.
    """

    id: str  # random, one per daemon run
    host: str
    pid: int
    env: str
    version: str  # of zenaton
    started_at: float
    heartbeat_at: float
    workers: int  # task worker processes
    busy_workers: int  # attempts running (or finished and not yet collected)
    instances_held: int  # suspended workflow runs in the engine's cache
    queue_depth: int  # queued tasks claimable at heartbeat_at: due, of a running instance
    steps: int  # instance steps committed since it started (as stats' "steps")
    steps_per_second: float  # over the interval since the previous heartbeat
    stats: str  # JSON text, see above

    def alive(self, now: float) -> bool:
        """Whether it wrote its record within ``DAEMON_STALE_AFTER`` seconds of ``now``."""
        return now - self.heartbeat_at <= DAEMON_STALE_AFTER


class Claimed(NamedTuple):
    """What a daemon took in one ``Store.claim_instances``: the instances, how many of them it
    took over from daemons whose lease ran out, and how many of their tasks were running (with
    the dead owner) and were queued again."""

    ids: list[str]
    taken_over: int = 0
    requeued: int = 0


NOTHING_CLAIMED = Claimed([])


class InstanceCount(NamedTuple):
    """How many instances of one kind and name are in one status (``Store.instance_counts``)."""

    kind: Kind
    name: str
    status: InstanceStatus
    instances: int  # the number (a tuple's ``count`` is a method)


class LogLine(str):
    """A line of the daemon's log: its text as the plain log prints it, and what a structured
    log (JSON) adds: the event, its level, and the instance it concerns."""

    event: str
    level: str
    instance_id: str | None
    name: str | None
    position: int | None
    message: str

    def __new__(
        cls,
        message: str,
        *,
        event: str,
        level: str = "info",
        instance_id: str | None = None,
        name: str | None = None,
        position: int | None = None,
    ) -> LogLine:
        text = f"{name} {instance_id[:8]}: {message}" if name and instance_id else message
        line = super().__new__(cls, text)
        line.event, line.level, line.message = event, level, message
        line.instance_id, line.name, line.position = instance_id, name, position
        return line

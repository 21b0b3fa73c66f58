"""Rewinding a workflow instance to one of its steps: the plan, and the checks both sides make.

Rewinding to position N keeps every journal entry before the first entry concerning a
position >= N, so that step N runs again. The entries from there on (results, events received
later, pause/resume/error/completed markers) move to the archive as the current run's tail;
the instance becomes running again and the daemon replays the kept journal with the current
code, which decides step N anew (run 1 is the original run, each rewind starts the next).

The cut never splits a step: a position whose first entry is kept keeps all its entries, so a
position inside a Parallel (whose results arrive in any order) rewinds to the Parallel's first
position. Clients only post a "rewind" inbox item (``client/rewind_request.py``); the daemon
plans again against the journal it then holds and applies it (``rewind_step.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from zenaton_runtime.errors import DuplicateInstanceError, NotFoundError
from zenaton_runtime.models import UNFINISHED, Entry, Instance, InstanceStatus, JournalEntry, Kind
from zenaton_runtime.store import StoreReads

# The entries that open a step; a call to another instance is one (rewound to, it is made again).
STEP_ENTRIES = (
    Entry.TASK_SCHEDULED,
    Entry.WAIT_STARTED,
    Entry.DISPATCHED,
    Entry.EVENT_SENT,
    Entry.CONTROL_SENT,
    Entry.FOUND,
    Entry.SCHEDULE_ADDED,
)
# What a step's position holds: its request and its outcomes (an error marker's position is only a label).
POSITION_ENTRIES = (*STEP_ENTRIES, Entry.TASK_COMPLETED, Entry.TASK_FAILED, Entry.TIMER_FIRED, Entry.CHILD_COMPLETED)


@dataclass(frozen=True)
class RewindPlan:
    instance_id: str
    requested: int  # the position asked for
    position: int  # where the new run starts: requested, or the first position of its Parallel
    keep_through_seq: int  # the last journal entry kept
    kept: tuple[JournalEntry, ...]
    archived: tuple[JournalEntry, ...]
    run: int  # the number of the run being archived (the new run is run + 1)

    @property
    def properties(self) -> str | None:
        """The properties snapshot of the kept journal (None: as dispatched)."""
        snapshots = [e.properties for e in self.kept if e.properties is not None]
        return snapshots[-1] if snapshots else None

    @property
    def children(self) -> list[str]:
        """Instances dispatched at archived positions: a rewind leaves them alone."""
        return [json.loads(e.data or "{}").get("id") for e in self.archived if e.type is Entry.DISPATCHED]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "requested_step": self.requested,
            "to_step": self.position,
            "keep_through_seq": self.keep_through_seq,
            "kept": len(self.kept),
            "archived_run": self.run,
            "archived": [
                {"seq": e.seq, "type": e.type.value, "position": e.position, "name": e.name} for e in self.archived
            ],
            "children_left_alone": self.children,
        }


def step_positions(journal: list[JournalEntry]) -> list[int]:
    return sorted({e.position for e in journal if e.type in STEP_ENTRIES and e.position is not None})


def plan_rewind(journal: list[JournalEntry], position: int, *, instance_id: str, run: int) -> RewindPlan:
    """What rewinding to ``position`` keeps and archives; NotFoundError if it is not a step."""
    positions = step_positions(journal)
    if position not in positions:
        steps = ", ".join(map(str, positions)) or "none yet"
        raise NotFoundError(f"instance {instance_id} has no step at position {position} (its steps: {steps})")
    marks = [(e.position, e.seq) for e in journal if e.type in POSITION_ENTRIES and e.position is not None]
    first_seq: dict[int, int] = {}
    for p, seq in marks:
        first_seq.setdefault(p, seq)
    cut = min(seq for p, seq in first_seq.items() if p >= position)
    while True:  # move the cut back to the start of every position it would split
        concerned = {p for p, seq in marks if seq >= cut}
        earliest = min(first_seq[p] for p in concerned)
        if earliest >= cut:
            break
        cut = earliest
    kept = tuple(e for e in journal if e.seq < cut)
    archived = tuple(e for e in journal if e.seq >= cut)
    return RewindPlan(instance_id, position, min(concerned), cut - 1, kept, archived, run)


def refusal(instance: Instance, status: InstanceStatus) -> str | None:
    """Why an instance in this status cannot be rewound, or None."""
    label = f"{instance.name} {instance.id}"
    if instance.kind is not Kind.WORKFLOW:
        return (
            f"cannot rewind task instance {instance.id}: only workflows have steps "
            "(use `zenaton retry` for a failed task)"
        )
    if status is InstanceStatus.RUNNING:
        return f"cannot rewind {label}: it is running; pause it first (`zenaton pause {instance.id}`)"
    if status is InstanceStatus.COMPLETED and instance.parent_id and instance.parent_position is not None:
        return f"cannot rewind {label}: its parent {instance.parent_id} already received its result; rewind the parent"
    return None


def custom_id_holder(store: StoreReads, instance: Instance) -> Instance | None:
    """Another unfinished instance holding the custom id a finished instance would take back."""
    if instance.custom_id is None:
        return None
    same = store.list_instances(env=instance.env, name=instance.name, custom_id=instance.custom_id, kind="workflow")
    return next((i for i in same if i.id != instance.id and i.status in UNFINISHED), None)


def duplicate(instance: Instance, holder_id: str) -> DuplicateInstanceError:
    return DuplicateInstanceError(
        f"cannot rewind {instance.name} {instance.id}: its id {instance.custom_id!r} is now held by the unfinished "
        f"instance {holder_id} (env {instance.env!r}); kill it first"
    )


def next_run(store: StoreReads, instance_id: str) -> int:
    """The current run's number: 1 + the newest archived run."""
    archive = store.archive(instance_id)
    return archive[-1].run + 1 if archive else 1

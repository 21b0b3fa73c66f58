"""The daemon's side of a rewind: apply a "rewind" inbox item to one workflow instance.

The instance's journal is cut (through the ``rewind`` batch op, in the activation's batch),
the instance becomes running with the properties of the kept journal, and the run is rebuilt
from the kept journal alone, so the current code decides the rewound step again. The plan is
made again here, against the journal as the daemon holds it: the client's plan may be stale.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from zenaton_runtime.engine.decisions import Decider
from zenaton_runtime.engine.journaling import RUNNING
from zenaton_runtime.engine.rewind_plan import RewindPlan, custom_id_holder, duplicate, next_run, plan_rewind, refusal
from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.models import Entry, InboxItem, InstanceStatus, JournalEntry, TaskStatus, Timer
from zenaton_runtime.replay import WorkflowRun

_UNFINISHED_TASK = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.FAILED)


class Rewinder(Decider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: list[JournalEntry] | None = None  # the stored journal once a rewind cut it
        self.rewound_to: int | None = None
        self.dropped_tasks: set[str] = set()  # cancelled by the rewind: their outcomes are stale

    _rebuild: Callable[[], WorkflowRun | None]  # the activation's replay, which a rewind ends with

    def _stored_journal(self) -> list[JournalEntry]:
        """The journal as the store will hold it before this activation's own appends."""
        return list(self.kept) if self.kept is not None else self.engine.store.journal(self.id)

    def _stale_child(self, payload: dict[str, Any]) -> bool:
        """A result from a child a rewind detached: the rewound step decides again."""
        if self.rewound_to is not None and payload["position"] >= self.rewound_to:
            return True
        child = self.engine.store.get_instance(payload["id"])
        return child is not None and child.parent_position is None

    def _killed_child(self, before: int | None = None) -> dict[str, Any] | None:
        """The error for the first killed child this instance still waits on (attached, and at a
        position before ``before`` when a rewind in this batch detaches those from there on)."""
        killed = sorted(
            (c.parent_position, c.id, c.name)
            for c in self.engine.store.list_instances(parent_id=self.id, status=InstanceStatus.KILLED)
            if c.parent_position is not None and (before is None or c.parent_position < before)
        )
        if not killed:
            return None
        position, child_id, name = killed[0]
        return {
            "class": "ChildWorkflowKilled",
            "message": (
                f"the child workflow {name} {child_id} it waits on (position {position}) was killed; to go on, "
                f"rewind this instance to step {position} (a new child), or rewind the child and resume this one"
            ),
            "position": position,
            "child_id": child_id,
        }

    def _on_rewind(self, item: InboxItem) -> None:
        requested = int(json.loads(item.data or "{}")["position"])
        try:
            plan = self._plan(requested)
        except ZenatonError as error:
            self.engine.log(f"{self._label()}: rewind to step {requested} refused: {error}")
            return
        self._drop_run()
        self.batch.rewind(self.id, plan.keep_through_seq, plan.position)
        self.kept, self.appended, self.rewound_to = list(plan.kept), [], plan.position
        self.properties, self._pending_properties = plan.properties, None
        for task in self.engine.store.open_tasks_of(self.id):
            if task.position >= plan.position and task.status in _UNFINISHED_TASK:
                self.dropped_tasks.add(task.id)
        self.status, self.error = RUNNING, None
        data = {"to_step": plan.position, "run": plan.run + 1, "archived": len(plan.archived)}
        self._append(Entry.REWOUND, data=json.dumps(data))
        self.engine.log(
            f"{self._label()}: rewound to step {plan.position}; {len(plan.archived)} entries archived as run {plan.run}"
        )
        killed = self._killed_child(before=plan.position)  # a step it keeps waits on a killed child
        if killed is not None:
            self._pause_with_error(killed)
        else:
            self._rebuild()
            self._restore_timers(plan)
        for task_id in self.dropped_tasks:
            self.engine.in_flight.pop(task_id, None)  # an attempt still running reports to no one

    def _plan(self, requested: int) -> RewindPlan:
        reason = refusal(self.instance, self.status)
        if reason:
            raise ZenatonError(reason)
        plan = plan_rewind(
            self._journal_now(), requested, instance_id=self.id, run=next_run(self.engine.store, self.id)
        )
        i = self.instance
        if self.status.finished and i.custom_id is not None:
            key = (i.env, i.name, i.custom_id)
            holder = custom_id_holder(self.engine.store, i)
            if holder is not None:
                raise duplicate(i, holder.id)
            if self.engine.custom_id_claimed(key):
                raise ZenatonError(f"its id {i.custom_id!r} was just taken by a new instance")
            self.engine.claimed_ids.add(key)
        return plan

    def _journal_now(self) -> list[JournalEntry]:
        """Stored entries plus this activation's appends, with the seqs the store will give them."""
        stored = self._stored_journal()
        last = stored[-1].seq if stored else 0
        return stored + [dataclasses.replace(self._as_entry(e), seq=last + n) for n, e in enumerate(self.appended, 1)]

    def _restore_timers(self, plan: RewindPlan) -> None:
        """A kept wait may be pending again (the event that ended it was archived): re-arm its timer."""
        if self.run is None:
            return
        for position in self.run.pending_waits():
            recorded = self.run.recorded.get(position)
            if position < plan.position and recorded is not None and recorded.fire_at is not None:
                self.batch.add_timer(Timer(self.id, position, recorded.fire_at))

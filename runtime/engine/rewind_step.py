"""The daemon's side of a rewind: apply a "rewind" inbox item to one workflow instance.

The instance's journal is cut (through the ``Rewind`` batch op, in the activation's batch),
the instance becomes running with the properties of the kept journal, and the run is rebuilt
from the kept journal alone, so the current code decides the rewound step again. The plan is
made again here, against the journal as the daemon holds it: the client's plan may be stale.
Also here: what the children a workflow waits on mean for it (a killed one stops it; the
result of one a rewind detached is stale).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from zenaton_runtime.engine.journaling import RUNNING, StepJournal
from zenaton_runtime.engine.rewind_plan import RewindPlan, custom_id_holder, duplicate, next_run, plan_rewind, refusal
from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.models import OPEN_TASKS, Entry, InboxItem, InstanceStatus, JournalEntry, Timer


class RewindStep:
    """One workflow activation's rewinds and its view of its children."""

    __slots__ = ("ctx", "dropped_tasks", "journal", "rewound_to")

    def __init__(self, journal: StepJournal) -> None:
        self.journal = journal
        self.ctx = journal.ctx
        self.rewound_to: int | None = None
        self.dropped_tasks: set[str] = set()  # cancelled by the rewind: their outcomes are stale

    def stale_child(self, payload: dict[str, Any]) -> bool:
        """A result from a child a rewind detached: the rewound step decides again."""
        if self.rewound_to is not None and payload["position"] >= self.rewound_to:
            return True
        child = self.ctx.reads.get_instance(payload["id"])
        return child is not None and child.parent_position is None

    def killed_child(self, before: int | None = None) -> dict[str, Any] | None:
        """The error for the first killed child this instance still waits on (attached, and at a
        position before ``before`` when a rewind in this batch detaches those from there on)."""
        killed = sorted(
            (c.parent_position, c.id, c.name)
            for c in self.ctx.reads.list_instances(parent_id=self.journal.id, status=InstanceStatus.KILLED)
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

    def apply(self, item: InboxItem, rebuild: Callable[[], object]) -> None:
        """Apply the rewind ``item`` asks for, or journal why not; ``rebuild`` is the activation's
        replay, which a rewind ends with (passed per call: held, it would keep the activation
        alive in a reference cycle past its step)."""
        j = self.journal
        requested = int(json.loads(item.data or "{}")["position"])
        try:
            plan = self._plan(requested)
        except ZenatonError as error:
            self.refuse(item, str(error))
            return
        j.drop_run()
        j.batch.rewind(j.id, plan.keep_through_seq, plan.position)
        j.kept, j.appended, self.rewound_to = list(plan.kept), [], plan.position
        j.reset_properties(plan.properties)
        for task in self.ctx.reads.open_tasks_of(j.id):
            if task.position >= plan.position and task.status in OPEN_TASKS:
                self.dropped_tasks.add(task.id)
        j.status, j.error = RUNNING, None
        data = {"to_step": plan.position, "run": plan.run + 1, "archived": len(plan.archived), "request": item.id}
        j.append(Entry.REWOUND, data=json.dumps(data))
        j.log(
            f"rewound to step {plan.position}; {len(plan.archived)} entries archived as run {plan.run}",
            event="rewound",
            position=plan.position,
        )
        killed = self.killed_child(before=plan.position)  # a step it keeps waits on a killed child
        if killed is not None:
            j.pause_with_error(killed)
        else:
            rebuild()
            self._restore_timers(plan)
        for task_id in self.dropped_tasks:
            self.ctx.forget_task(task_id)  # an attempt still running reports to no one, once this lands

    def refuse(self, item: InboxItem, reason: str) -> None:
        """Answer a rewind request with a refusal, in the journal: the client reads it there."""
        requested = json.loads(item.data or "{}").get("position")
        refused = {"request": item.id, "to_step": requested, "reason": reason}
        self.journal.append(Entry.REWIND_REFUSED, data=json.dumps(refused))
        self.journal.log(f"rewind to step {requested} refused: {reason}", event="rewind_refused", level="warning")

    def _plan(self, requested: int) -> RewindPlan:
        j = self.journal
        reason = refusal(j.instance, j.status)
        if reason:
            raise ZenatonError(reason)
        plan = plan_rewind(self._journal_now(), requested, instance_id=j.id, run=next_run(self.ctx.reads, j.id))
        i = j.instance
        if j.status.finished and i.custom_id is not None:
            key = (i.env, i.name, i.custom_id)
            holder = custom_id_holder(self.ctx.reads, i)
            if holder is not None:
                raise duplicate(i, holder.id)
            if self.ctx.custom_id_claimed(key):
                raise ZenatonError(f"its id {i.custom_id!r} was just taken by a new instance")
            self.ctx.claimed_ids.add(key)
        return plan

    def _journal_now(self) -> list[JournalEntry]:
        """Stored entries plus this activation's appends, with the seqs the store will give them."""
        j = self.journal
        stored = j.stored_journal()
        last = stored[-1].seq if stored else 0
        return stored + [dataclasses.replace(j.as_entry(e), seq=last + n) for n, e in enumerate(j.appended, 1)]

    def _restore_timers(self, plan: RewindPlan) -> None:
        """A kept wait may be pending again (the event that ended it was archived): re-arm its timer."""
        run = self.journal.run
        if run is None:
            return
        for position in run.pending_waits():
            recorded = run.recorded.get(position)
            if position < plan.position and recorded is not None and recorded.fire_at is not None:
                self.journal.batch.add_timer(Timer(self.journal.id, position, recorded.fire_at))

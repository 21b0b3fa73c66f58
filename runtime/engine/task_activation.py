"""A standalone task instance's share of an engine step (a task dispatched on its own): its
attempts' outcomes, kill and retry. It journals and applies outcomes through the same helpers
as a workflow activation."""

from __future__ import annotations

from zenaton_runtime.engine.context import StepContext
from zenaton_runtime.engine.decisions import DecisionApplier
from zenaton_runtime.engine.journaling import StepJournal, outcome_data
from zenaton_runtime.models import Entry, InboxItem, InboxKind, Instance, InstanceStatus, TaskRecord, TaskStatus
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.store.ops import Batch


class TaskActivation:
    __slots__ = ("decisions", "journal")

    def __init__(self, ctx: StepContext, instance: Instance, batch: Batch) -> None:
        self.journal = StepJournal(ctx, instance, batch)
        self.decisions = DecisionApplier(self.journal)

    def run(self, outcomes: list[tuple[TaskRecord, Outcome]], inbox: list[InboxItem] | None) -> None:
        j = self.journal
        if inbox is not None:
            j.batch.consume_inbox(j.id, [item.id for item in inbox])
            for item in inbox:
                self._inbox_item(item)
        for task, outcome in outcomes:
            if j.status.finished:
                j.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            elif outcome.ok:
                j.batch.update_task(task.id, status=TaskStatus.DONE)
                j.append(Entry.TASK_COMPLETED, 0, task.name, outcome_data(outcome, task.attempts))
                j.status = InstanceStatus.COMPLETED
                j.log("completed", event="completed")
            else:
                self.decisions.task_failed(task, outcome)
        j.finish()

    def _inbox_item(self, item: InboxItem) -> None:
        j = self.journal
        if item.kind is InboxKind.KILL and not j.status.finished:
            self.decisions.kill()
        elif item.kind is InboxKind.RETRY and j.status is InstanceStatus.FAILED:
            self.decisions.requeue_failed(Entry.RETRIED)
        else:
            j.log(f"{item.label} ignored (instance is {j.status.value})", event="ignored", level="warning")

"""A standalone task instance (a task dispatched on its own): its attempts, kill and retry."""

from __future__ import annotations

from zenaton_runtime.engine.journaling import RUNNING, ActivationBase, outcome_data
from zenaton_runtime.models import Entry, InboxItem, InstanceStatus, TaskRecord, TaskStatus
from zenaton_runtime.pool.attempts import Outcome


class TaskActivation(ActivationBase):
    def run_task(self, outcomes: list[tuple[TaskRecord, Outcome]], inbox: list[InboxItem] | None) -> None:
        if inbox is not None:
            self.batch.consume_inbox(self.id, [item.id for item in inbox])
            for item in inbox:
                self._inbox_item(item)
        for task, outcome in outcomes:
            if self.status.finished:
                self.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            elif outcome.ok:
                self.batch.update_task(task.id, status=TaskStatus.DONE)
                self._append(Entry.TASK_COMPLETED, 0, task.name, outcome_data(outcome, task.attempts))
                self.status = InstanceStatus.COMPLETED
                self.engine.log(f"{self._label()}: completed")
            else:
                self._failure(task, outcome)
        self._finish()

    def _inbox_item(self, item: InboxItem) -> None:
        if item.kind == "kill" and not self.status.finished:
            self.status = InstanceStatus.KILLED
            self.batch.cancel_tasks(self.id)
            self._append(Entry.KILLED)
            self.engine.log(f"{self._label()}: killed")
        elif item.kind == "retry" and self.status is InstanceStatus.FAILED:
            for task in self.engine.store.open_tasks_of(self.id):
                if task.status is TaskStatus.FAILED:
                    self.batch.update_task(task.id, status=TaskStatus.QUEUED, retry_index=0, run_at=self.now)
            self.status, self.error = RUNNING, None
            self._append(Entry.RETRIED)
            self.engine.log(f"{self._label()}: retried")
        else:
            self.engine.log(f"{self._label()}: {item.kind} ignored (instance is {self.status.value})")

    def _failure(self, task: TaskRecord, outcome: Outcome) -> None:
        delay = outcome.retry_delay
        self._append(
            Entry.TASK_FAILED, 0, task.name, outcome_data(outcome, task.attempts, error=outcome.error, retry_in=delay)
        )
        if delay:
            self.batch.update_task(
                task.id, status=TaskStatus.QUEUED, retry_index=task.retry_index + 1, run_at=self.now + delay
            )
            return
        self.batch.update_task(task.id, status=TaskStatus.FAILED)
        error = dict(outcome.error or {})
        error.update(position=0, task=task.name, task_id=task.id, stdout=outcome.stdout, stderr=outcome.stderr)
        self._pause_with_error(error)

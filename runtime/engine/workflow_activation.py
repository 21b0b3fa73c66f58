"""A workflow instance's share of an engine step: inputs in, journal entries and decisions out.

The inbox comes first, so a pause or kill stops what the other inputs would start.
The run is built only when an input must be delivered to it: taken from the LRU
cache, or rebuilt by replaying the journal (plus what this activation already
added), so both paths meet the same code. Inputs reach the journal even when they
cannot be delivered (paused instance, a payload the code cannot read any more),
so nothing is lost for a later resume.
"""

from __future__ import annotations

import json
from typing import Any

from zenaton_runtime.engine.journaling import PAUSED, RUNNING, error_info, outcome_data
from zenaton_runtime.engine.rewind_step import Rewinder
from zenaton_runtime.models import Entry, InboxItem, InstanceStatus, TaskRecord, TaskStatus, Timer
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.replay import Decision, WorkflowRun
from zenaton_runtime.replay.journal import Input, inputs, recorded_requests
from zenaton_runtime.timing import waits


class Activation(Rewinder):
    def run_workflow(
        self, outcomes: list[tuple[TaskRecord, Outcome]], timers: list[Timer], inbox: list[InboxItem] | None
    ) -> None:
        if inbox is not None:
            self.batch.consume_inbox(self.id, [item.id for item in inbox])
            for item in inbox:
                self._inbox_item(item)
        for task, outcome in outcomes:
            self._task_outcome(task, outcome)
        for timer in timers:
            self._timer(timer)
        self._live_run()  # a fresh instance's first decisions
        self._finish()

    def contain(
        self,
        error: BaseException,
        outcomes: list[tuple[TaskRecord, Outcome]],
        timers: list[Timer],
        inbox: list[InboxItem] | None,
    ) -> None:
        """After an unexpected failure of this activation: pause with it, keep every input."""
        self._pause_with_error(error_info(error))
        if inbox is not None:
            self.batch.consume_inbox(self.id, [item.id for item in inbox])
            for item in inbox:
                if item.kind == "event":
                    self._append(Entry.EVENT_RECEIVED, None, item.name, item.data)
        for task, outcome in outcomes:
            self.batch.update_task(task.id, status=TaskStatus.DONE if outcome.ok else TaskStatus.FAILED)
            entry = Entry.TASK_COMPLETED if outcome.ok else Entry.TASK_FAILED
            self._append(entry, task.position, task.name, outcome_data(outcome, task.attempts, error=outcome.error))
        for timer in timers:
            self.batch.delete_timer(self.id, timer.position)
            self._append(Entry.TIMER_FIRED, timer.position)
        self._finish()

    # -- the run ---------------------------------------------------------
    def _live_run(self) -> WorkflowRun | None:
        """The run to deliver inputs to: None unless the instance is running."""
        if self.status is RUNNING and self.run is None:
            self.run = self.engine.cache.get(self.id) or self._rebuild()
        return self.run if self.status is RUNNING else None

    def _rebuild(self) -> WorkflowRun | None:
        """Replay the whole journal into a fresh run; decide what it adds."""
        self._drop_run()
        journal = self._stored_journal() + [self._as_entry(e) for e in self.appended]
        try:
            workflow = self.codec.decode(self.instance.data)
        except Exception as error:  # a class gone from the project, a corrupt payload
            self._pause_with_error(error_info(error))
            return None
        run = WorkflowRun(workflow, self.id, recorded_requests(journal), waits.fire_at, self.engine.decision_timeout)
        decisions = run.start(self.now)
        for item in inputs(journal):
            if any(d.kind == "fail" for d in decisions):
                break
            try:
                decisions += self._deliver(run, item)
            except Exception as error:  # a journaled payload the current code cannot read
                run.close()
                self._pause_with_error(error_info(error))
                return None
        self.run = run
        self._snapshot()
        self._decide(decisions)
        return self.run

    def _deliver(self, run: WorkflowRun, item: Input) -> list[Decision]:
        if item.kind == "timer":
            return run.deliver_timer(item.position, self.now)  # type: ignore[arg-type]
        if item.kind == "event":
            return run.deliver_event(self.codec.decode(item.value), self.now)  # type: ignore[arg-type]
        value = self.codec.decode(item.value)  # type: ignore[arg-type]
        return run.deliver_result(item.position, value, self.now)  # type: ignore[arg-type]

    def _deliver_recorded(self, item: Input, entry: Entry, name: str | None, data: str | None) -> None:
        """Deliver an input if the instance runs, then journal it (always, even if it cannot be read)."""
        run = self._live_run()
        decisions: list[Decision] = []
        if run is not None:
            waiting = run.pending_waits()
            try:
                decisions = self._deliver(run, item)
            except Exception as error:
                self._append(entry, item.position, name, data)
                self._pause_with_error(error_info(error))
                return
            if waiting:
                for position in set(waiting) - set(run.pending_waits()):
                    self.batch.delete_timer(self.id, position)  # the wait ended before its time ran out
            self._snapshot()
        self._append(entry, item.position, name, data)
        self._decide(decisions)

    # -- inputs ----------------------------------------------------------
    def _task_outcome(self, task: TaskRecord, outcome: Outcome) -> None:
        if self.status.finished or task.id in self.dropped_tasks:
            self.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            return
        if outcome.ok:
            self.batch.update_task(task.id, status=TaskStatus.DONE)
            data = outcome_data(outcome, task.attempts)
            result = Input("result", task.position, outcome.result or "null")
            self.engine.log(f"{self._label()}: task {task.name} completed (position {task.position})")
            self._deliver_recorded(result, Entry.TASK_COMPLETED, task.name, data)  # logs what it decides next
            return
        delay = outcome.retry_delay
        data = outcome_data(outcome, task.attempts, error=outcome.error, retry_in=delay)
        self._append(Entry.TASK_FAILED, task.position, task.name, data)
        if delay:
            self.batch.update_task(
                task.id, status=TaskStatus.QUEUED, retry_index=task.retry_index + 1, run_at=self.now + delay
            )
            self.engine.log(f"{self._label()}: task {task.name} failed, retry in {delay:g} s")
            return
        self.batch.update_task(task.id, status=TaskStatus.FAILED)
        error = dict(outcome.error or {})
        error.update(
            position=task.position, task=task.name, task_id=task.id, stdout=outcome.stdout, stderr=outcome.stderr
        )
        self._pause_with_error(error)

    def _timer(self, timer: Timer) -> None:
        self.batch.delete_timer(self.id, timer.position)
        if self.status.finished:
            return
        self.engine.log(f"{self._label()}: timer fired (position {timer.position})")
        self._deliver_recorded(Input("timer", timer.position, None), Entry.TIMER_FIRED, None, None)

    def _inbox_item(self, item: InboxItem) -> None:
        handler = getattr(self, f"_on_{item.kind}", None)
        if handler is None or (self.status.finished and item.kind != "rewind"):
            self.engine.log(f"{self._label()}: {item.kind} {item.name or ''} ignored (instance is {self.status.value})")
            return
        handler(item)

    def _on_event(self, item: InboxItem) -> None:
        self.engine.log(f"{self._label()}: event {item.name} received")
        self._deliver_recorded(Input("event", None, item.data), Entry.EVENT_RECEIVED, item.name, item.data)

    def _on_child_completed(self, item: InboxItem) -> None:
        payload: dict[str, Any] = json.loads(item.data or "{}")
        if self._stale_child(payload):
            self.engine.log(f"{self._label()}: result of detached child {payload['id'][:8]} ignored")
            return
        data = json.dumps({"id": payload["id"], "result": payload["result"]})
        item_input = Input("result", payload["position"], json.dumps(payload["result"]))
        self._deliver_recorded(item_input, Entry.CHILD_COMPLETED, item.name, data)

    def _on_child_killed(self, item: InboxItem) -> None:
        """A child this instance waits on will never complete: paused with the error, as for a
        task that failed for good. The store says which (the item only says to look)."""
        killed = self._killed_child(before=self.rewound_to)
        if killed is None:  # detached by a rewind since
            self.engine.log(f"{self._label()}: {item.kind} ignored (no child it waits on is killed)")
            return
        self._pause_with_error(killed)

    def _on_pause(self, item: InboxItem) -> None:
        if self.status is not RUNNING:
            return
        self.status = PAUSED
        self._drop_run()
        self._append(Entry.PAUSED)
        self.engine.log(f"{self._label()}: paused")

    def _on_resume(self, item: InboxItem) -> None:
        if self.status is PAUSED:
            self._continue(Entry.RESUMED)

    def _on_retry(self, item: InboxItem) -> None:
        if self.status is PAUSED and self._current_error():
            self._continue(Entry.RETRIED)

    def _on_kill(self, item: InboxItem) -> None:
        self.status = InstanceStatus.KILLED
        self._drop_run()
        self.batch.cancel_tasks(self.id)
        self.batch.delete_timers(self.id)
        self._append(Entry.KILLED)
        if self.instance.parent_id and self.instance.parent_position is not None:  # it waits on us
            payload = json.dumps({"position": self.instance.parent_position, "id": self.id})
            self.batch.post(self.instance.parent_id, "child_killed", self.instance.name, payload)
        self.engine.log(f"{self._label()}: killed")

    def _continue(self, entry: Entry) -> None:
        """Resume or retry: re-queue every task that failed for good, then replay; paused again
        at once while it waits on a killed child."""
        for task in self.engine.store.open_tasks_of(self.id):
            if task.status is TaskStatus.FAILED:
                self.batch.update_task(task.id, status=TaskStatus.QUEUED, retry_index=0, run_at=self.now)
        self.status = RUNNING
        self.error = None
        self._append(entry)
        self.engine.log(f"{self._label()}: {entry.value}")
        killed = self._killed_child()
        if killed is not None:
            self._pause_with_error(killed)
            return
        self._rebuild()

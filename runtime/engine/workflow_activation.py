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
from collections.abc import Callable
from typing import Any

from zenaton_runtime.engine.context import StepContext
from zenaton_runtime.engine.decisions import DecisionApplier
from zenaton_runtime.engine.journaling import PAUSED, RUNNING, StepJournal, error_info, outcome_data
from zenaton_runtime.engine.rewind_step import RewindStep
from zenaton_runtime.models import Entry, InboxItem, InboxKind, Instance, JournalEntry, TaskRecord, TaskStatus, Timer
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.replay import Decision, WorkflowRun
from zenaton_runtime.replay.journal import Input, InputKind, recorded_requests
from zenaton_runtime.replay.rebuild import deliver, replay_journal
from zenaton_runtime.store.ops import Batch
from zenaton_runtime.timing import waits

Outcomes = list[tuple[TaskRecord, Outcome]]


class WorkflowActivation:
    __slots__ = ("ctx", "decisions", "journal", "rewinding")

    def __init__(self, ctx: StepContext, instance: Instance, batch: Batch) -> None:
        self.ctx = ctx
        self.journal = StepJournal(ctx, instance, batch)
        self.decisions = DecisionApplier(self.journal)
        self.rewinding = RewindStep(self.journal)

    def run(self, outcomes: Outcomes, timers: list[Timer], inbox: list[InboxItem] | None) -> None:
        j = self.journal
        if inbox is not None:
            j.batch.consume_inbox(j.id, [item.id for item in inbox])
            for item in inbox:
                self._inbox_item(item)
        for task, outcome in outcomes:
            self._task_outcome(task, outcome)
        for timer in timers:
            self._timer(timer)
        self._live_run()  # a fresh instance's first decisions
        j.finish()

    def contain(
        self, error: BaseException, outcomes: Outcomes, timers: list[Timer], inbox: list[InboxItem] | None
    ) -> None:
        """After an unexpected failure of this activation: pause with it, keep every input."""
        j = self.journal
        j.pause_with_error(error_info(error))
        if inbox is not None:
            j.batch.consume_inbox(j.id, [item.id for item in inbox])
            for item in inbox:
                if item.kind is InboxKind.EVENT:
                    j.append(Entry.EVENT_RECEIVED, None, item.name, item.data)
                elif item.kind is InboxKind.REWIND:  # answered, so that the client says why
                    self.rewinding.refuse(item, f"internal error while deciding: {error!r}")
        for task, outcome in outcomes:
            j.batch.update_task(task.id, status=TaskStatus.DONE if outcome.ok else TaskStatus.FAILED)
            entry = Entry.TASK_COMPLETED if outcome.ok else Entry.TASK_FAILED
            j.append(entry, task.position, task.name, outcome_data(outcome, task.attempts, error=outcome.error))
        for timer in timers:
            j.batch.delete_timer(j.id, timer.position)
            j.append(Entry.TIMER_FIRED, timer.position)
        j.finish()

    # -- the run ---------------------------------------------------------
    def _live_run(self) -> WorkflowRun | None:
        """The run to deliver inputs to: None unless the instance is running."""
        j = self.journal
        if j.status is RUNNING and j.run is None:
            j.run = self.ctx.cache.get(j.id) or self._rebuild()
        return j.run if j.status is RUNNING else None

    def _rebuild(self) -> WorkflowRun | None:
        """Replay the whole journal into a fresh run; decide what it adds."""
        j = self.journal
        j.drop_run()
        journal = self._stored_journal() + [j.as_entry(e) for e in j.appended]
        try:
            workflow = self.ctx.codec.decode(j.instance.data)
        except Exception as error:  # a class gone from the project, a corrupt payload
            j.pause_with_error(error_info(error))
            return None
        run = WorkflowRun(workflow, j.id, recorded_requests(journal), waits.fire_at, self.ctx.decision_timeout)
        try:
            decisions = replay_journal(run, journal, j.now, self.ctx.codec.decode)
        except Exception as error:  # a journaled payload the current code cannot read
            run.close()
            j.pause_with_error(error_info(error))
            return None
        j.run = run
        j.snapshot()
        self.decisions.apply(decisions)
        return j.run

    def _stored_journal(self) -> list[JournalEntry]:
        """What the replay needs of the stored journal. A fresh instance's holds its ``started``
        entry alone, which the replay skips (it neither requests nor delivers anything): when
        the store read its length with the instance (SQLite), it is not read again."""
        j = self.journal
        if j.kept is None and self.ctx.reads.journal_length(j.id) == 1:
            return []
        return j.stored_journal()

    def _deliver_recorded(self, item: Input, entry: Entry, name: str | None, data: str | None) -> None:
        """Deliver an input if the instance runs, then journal it (always, even if it cannot be read)."""
        j = self.journal
        run = self._live_run()
        decisions: list[Decision] = []
        if run is not None:
            waiting = run.pending_waits()
            try:
                decisions = deliver(run, item, j.now, self.ctx.codec.decode)
            except Exception as error:
                j.append(entry, item.position, name, data)
                j.pause_with_error(error_info(error))
                return
            if waiting:
                for position in set(waiting) - set(run.pending_waits()):
                    j.batch.delete_timer(j.id, position)  # the wait ended before its time ran out
            j.snapshot()
        j.append(entry, item.position, name, data)
        self.decisions.apply(decisions)

    # -- inputs ----------------------------------------------------------
    def _task_outcome(self, task: TaskRecord, outcome: Outcome) -> None:
        j = self.journal
        if j.status.finished or task.id in self.rewinding.dropped_tasks:
            j.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            return
        if outcome.ok:
            j.batch.update_task(task.id, status=TaskStatus.DONE)
            data = outcome_data(outcome, task.attempts)
            result = Input(InputKind.RESULT, task.position, outcome.result or "null")
            j.log(
                f"task {task.name} completed (position {task.position})", event="task_completed", position=task.position
            )
            self._deliver_recorded(result, Entry.TASK_COMPLETED, task.name, data)  # logs what it decides next
        elif self.decisions.task_failed(task, outcome):
            j.log(
                f"task {task.name} failed, retry in {outcome.retry_delay:g} s",
                event="task_retry",
                position=task.position,
                level="warning",
            )

    def _timer(self, timer: Timer) -> None:
        j = self.journal
        j.batch.delete_timer(j.id, timer.position)
        if j.status.finished:
            return
        j.log(f"timer fired (position {timer.position})", event="timer_fired", position=timer.position)
        self._deliver_recorded(Input(InputKind.TIMER, timer.position, None), Entry.TIMER_FIRED, None, None)

    def _inbox_item(self, item: InboxItem) -> None:
        handler = _INBOX.get(item.kind)
        if handler is None or (self.journal.status.finished and item.kind is not InboxKind.REWIND):
            self.journal.log(
                f"{item.label} {item.name or ''} ignored (instance is {self.journal.status.value})",
                event="ignored",
                level="warning",
            )
            return
        handler(self, item)

    def _on_event(self, item: InboxItem) -> None:
        self.journal.log(f"event {item.name} received", event="event_received")
        self._deliver_recorded(Input(InputKind.EVENT, None, item.data), Entry.EVENT_RECEIVED, item.name, item.data)

    def _on_child_completed(self, item: InboxItem) -> None:
        payload: dict[str, Any] = json.loads(item.data or "{}")
        if self.rewinding.stale_child(payload):
            self.journal.log(f"result of detached child {payload['id'][:8]} ignored", event="ignored")
            return
        data = json.dumps({"id": payload["id"], "result": payload["result"]})
        item_input = Input(InputKind.RESULT, payload["position"], json.dumps(payload["result"]))
        self._deliver_recorded(item_input, Entry.CHILD_COMPLETED, item.name, data)

    def _on_child_killed(self, item: InboxItem) -> None:
        """A child this instance waits on will never complete: paused with the error, as for a
        task that failed for good. The store says which (the item only says to look)."""
        killed = self.rewinding.killed_child(before=self.rewinding.rewound_to)
        if killed is None:  # detached by a rewind since
            self.journal.log(f"{item.label} ignored (no child it waits on is killed)", event="ignored")
            return
        self.journal.pause_with_error(killed)

    def _on_pause(self, item: InboxItem) -> None:
        j = self.journal
        if j.status is not RUNNING:
            return
        j.status = PAUSED
        j.drop_run()
        j.append(Entry.PAUSED)
        j.log("paused", event="paused")

    def _on_resume(self, item: InboxItem) -> None:
        if self.journal.status is PAUSED:
            self._continue(Entry.RESUMED)

    def _on_retry(self, item: InboxItem) -> None:
        if self.journal.status is PAUSED and self.journal.current_error():
            self._continue(Entry.RETRIED)

    def _on_kill(self, item: InboxItem) -> None:
        self.decisions.kill()

    def _on_rewind(self, item: InboxItem) -> None:
        self.rewinding.apply(item, self._rebuild)

    def _continue(self, entry: Entry) -> None:
        """Resume or retry: re-queue every task that failed for good, then replay; paused again
        at once while it waits on a killed child."""
        self.decisions.requeue_failed(entry)
        killed = self.rewinding.killed_child()
        if killed is not None:
            self.journal.pause_with_error(killed)
            return
        self._rebuild()


_INBOX: dict[InboxKind, Callable[[WorkflowActivation, InboxItem], None]] = {
    InboxKind.EVENT: WorkflowActivation._on_event,
    InboxKind.CHILD_COMPLETED: WorkflowActivation._on_child_completed,
    InboxKind.CHILD_KILLED: WorkflowActivation._on_child_killed,
    InboxKind.PAUSE: WorkflowActivation._on_pause,
    InboxKind.RESUME: WorkflowActivation._on_resume,
    InboxKind.RETRY: WorkflowActivation._on_retry,
    InboxKind.KILL: WorkflowActivation._on_kill,
    InboxKind.REWIND: WorkflowActivation._on_rewind,
}

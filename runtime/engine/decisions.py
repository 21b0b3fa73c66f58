"""The one decision applier: what a run decided, and what a task attempt's outcome means, as
batch writes. Both activations apply through it; each kind has one handler, in a table. A call
to another instance (``engine/calls.py``) is answered here too: the answer goes back to the run,
and what the run decides next is applied in turn."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from zenaton_runtime.engine import calls
from zenaton_runtime.engine.journaling import RUNNING, StepJournal, error_info, outcome_data
from zenaton_runtime.errors import DuplicateInstanceError
from zenaton_runtime.instances import new_instance, new_task_id
from zenaton_runtime.models import (
    UNFINISHED,
    Entry,
    InboxKind,
    Instance,
    InstanceStatus,
    Kind,
    TaskRecord,
    TaskStatus,
    Timer,
)
from zenaton_runtime.pool.attempts import Outcome
from zenaton_runtime.replay import Decision, DecisionKind
from zenaton_runtime.replay.deadline import DecisionTimeout


class DecisionApplier:
    """Applies decisions and outcomes to one instance's ``StepJournal`` (and its batch)."""

    __slots__ = ("ctx", "journal")

    def __init__(self, journal: StepJournal) -> None:
        self.journal = journal
        self.ctx = journal.ctx

    def apply(self, decisions: list[Decision]) -> None:
        started: float | None = None  # when the first call was answered
        while decisions:  # a loop, not recursion: a run may make thousands of calls in one step
            failures = [d for d in decisions if d.kind is DecisionKind.FAIL]
            answered: list[Decision] = []
            for decision in failures[:1] or decisions:  # a failed decision stops everything it came with
                if self.journal.status is not RUNNING:
                    return
                try:
                    answered = _HANDLERS[decision.kind](self, decision) or answered
                except Exception as error:  # user code ran here too (a child's id(), versions())
                    self.journal.pause_with_error(error_info(error))
            decisions = answered  # what the run decided once a call was answered (the call came last)
            limit = self.ctx.decision_timeout
            if decisions and limit:  # calls answered one after the other share one decision's time
                started = time.monotonic() if started is None else started
                if time.monotonic() - started > limit:  # calls in an endless loop: stopped, as any loop
                    self.journal.pause_with_error(error_info(DecisionTimeout(limit)))
                    return

    # -- what a run decides ----------------------------------------------
    def _task(self, d: Decision) -> None:
        j = self.journal
        assert d.position is not None and d.name is not None
        data = self.ctx.codec.encode(d.job, d.name or "task")
        task_id = new_task_id()
        j.batch.add_task(TaskRecord(task_id, j.id, d.position, d.name, data, TaskStatus.QUEUED, 0, 0, j.now, j.now))
        group = "null" if d.group is None else int(d.group)
        scheduled = f'{{"task_id": "{task_id}", "group": {group}, "task": {data}}}'  # the task as sent, embedded
        j.append(Entry.TASK_SCHEDULED, d.position, d.name, scheduled)
        j.log(f"task {d.name} scheduled (position {d.position})", event="task_scheduled", position=d.position)

    def _child(self, d: Decision) -> None:
        self._start_instance(d, wait=True)

    def _dispatch(self, d: Decision) -> None:
        self._start_instance(d, wait=False)

    def _start_instance(self, d: Decision, wait: bool) -> None:
        j = self.journal
        instance, started, task = new_instance(
            self.ctx.codec,
            d.job,
            env=j.instance.env,
            now=j.now,
            parent_id=j.id,
            parent_position=d.position if wait else None,
        )
        if instance.kind is Kind.WORKFLOW and instance.custom_id is not None:
            key = (instance.env, instance.name, instance.custom_id)
            if self.ctx.custom_id_claimed(key) or self._custom_id_held(instance):
                raise DuplicateInstanceError(
                    f"workflow {instance.name!r} already has an unfinished instance with id "
                    f"{instance.custom_id!r} (env {instance.env!r}); position {d.position} cannot start another"
                )
            self.ctx.claimed_ids.add(key)
        if instance.kind is Kind.WORKFLOW:
            self.ctx.created.append(instance)  # a call later this step may name it
        j.batch.create_instance(instance, started, task)
        data = json.dumps({"id": instance.id, "kind": instance.kind.value, "wait": wait})
        j.append(Entry.DISPATCHED, d.position, d.name, data)
        j.log(
            f"dispatched {instance.kind.value} {d.name} as {instance.id[:8]}", event="dispatched", position=d.position
        )

    def _custom_id_held(self, instance: Instance) -> bool:
        """An unfinished instance holds the child's custom id in the store; the commit in flight
        may be the one that finishes it, so a holder found is looked up again once it landed."""

        def held() -> bool:
            taken = self.ctx.reads.list_instances(
                env=instance.env, name=instance.name, custom_id=instance.custom_id, kind="workflow"
            )
            return any(i.status in UNFINISHED for i in taken)

        if not held():
            return False
        if not self.ctx.see_commit_in_flight():
            return True
        return held()

    def _wait(self, d: Decision) -> None:
        j = self.journal
        j.append(Entry.WAIT_STARTED, d.position, d.name, json.dumps({"event": d.event, "fire_at": d.fire_at}))
        pending = j.run is not None and d.position in j.run.pending_waits()
        if d.fire_at is not None and d.position is not None and pending:  # a replay may have ended it already
            j.batch.add_timer(Timer(j.id, d.position, d.fire_at))
        j.log(f"waiting for {d.name} (position {d.position})", event="wait_started", position=d.position)

    def _call(self, d: Decision) -> list[Decision]:
        """A call to another instance: decided, journaled with its answer, and the answer (that
        entry's data, decoded, as replay will deliver it) given back to the run."""
        j = self.journal
        assert d.position is not None
        entry, data = calls.decide(j, d)
        j.append(entry, d.position, d.name, data)
        run = j.run
        if run is None:  # cannot happen: a run asked; its answer waits in the journal for a replay
            return []
        decisions = run.deliver_result(d.position, self.ctx.codec.decode(data), j.now)
        j.snapshot()  # what the code changed after the call goes on the next entry
        return decisions

    def _complete(self, d: Decision) -> None:
        j = self.journal
        result = self.ctx.codec.encode(d.result, "result")
        j.snapshot()
        j.append(Entry.COMPLETED, data='{"result": ' + result + "}")
        j.status = InstanceStatus.COMPLETED
        j.drop_run()
        j.batch.delete_timers(j.id)
        parent_id, position = j.instance.parent_id, j.instance.parent_position
        if parent_id and position is not None:
            payload = f'{{"position": {int(position)}, "id": "{j.id}", "result": {result}}}'
            j.batch.post(parent_id, InboxKind.CHILD_COMPLETED, j.instance.name, payload)
        j.log("completed", event="completed")

    def _fail(self, d: Decision) -> None:
        assert d.error is not None
        self.journal.pause_with_error(error_info(d.error, d.traceback))

    # -- shared by both activations --------------------------------------
    def task_failed(self, task: TaskRecord, outcome: Outcome) -> bool:
        """Journal a failed attempt; re-queue it if the task asked for a retry, else stop the
        instance with its error. True if it will be retried."""
        j = self.journal
        delay = outcome.retry_delay
        data = outcome_data(outcome, task.attempts, error=outcome.error, retry_in=delay)
        j.append(Entry.TASK_FAILED, task.position, task.name, data)
        if delay:
            j.batch.update_task(
                task.id, status=TaskStatus.QUEUED, retry_index=task.retry_index + 1, run_at=j.now + delay
            )
            return True
        j.batch.update_task(task.id, status=TaskStatus.FAILED)
        error: dict[str, Any] = dict(outcome.error or {})
        error.update(
            position=task.position, task=task.name, task_id=task.id, stdout=outcome.stdout, stderr=outcome.stderr
        )
        j.pause_with_error(error)
        return False

    def requeue_failed(self, entry: Entry) -> None:
        """Resume or retry: every task that failed for good is queued again; the instance runs."""
        j = self.journal
        for task in self.ctx.reads.open_tasks_of(j.id):
            if task.status is TaskStatus.FAILED:
                j.batch.update_task(task.id, status=TaskStatus.QUEUED, retry_index=0, run_at=j.now)
        j.status, j.error = RUNNING, None
        j.append(entry)
        j.log(entry.value, event=entry.value)

    def kill(self) -> None:
        """Killed: its live tasks cancelled, its timers gone; a parent waiting on it is told."""
        j = self.journal
        j.status = InstanceStatus.KILLED
        j.drop_run()
        j.batch.cancel_tasks(j.id)
        j.batch.delete_timers(j.id)
        j.append(Entry.KILLED)
        parent_id, position = j.instance.parent_id, j.instance.parent_position
        if parent_id and position is not None:  # it waits on us
            payload = json.dumps({"position": position, "id": j.id})
            j.batch.post(parent_id, InboxKind.CHILD_KILLED, j.instance.name, payload)
        j.log("killed", event="killed")


_HANDLERS: dict[DecisionKind, Callable[[DecisionApplier, Decision], list[Decision] | None]] = {
    DecisionKind.TASK: DecisionApplier._task,
    DecisionKind.CHILD: DecisionApplier._child,
    DecisionKind.DISPATCH: DecisionApplier._dispatch,
    DecisionKind.WAIT: DecisionApplier._wait,
    DecisionKind.SEND_EVENT: DecisionApplier._call,
    DecisionKind.PAUSE: DecisionApplier._call,
    DecisionKind.RESUME: DecisionApplier._call,
    DecisionKind.KILL: DecisionApplier._call,
    DecisionKind.FIND: DecisionApplier._call,
    DecisionKind.SCHEDULE: DecisionApplier._call,
    DecisionKind.COMPLETE: DecisionApplier._complete,
    DecisionKind.FAIL: DecisionApplier._fail,
}

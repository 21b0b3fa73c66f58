"""One instance's share of an engine step: inputs in, journal entries and decisions out.

Everything is written to the step's batch; nothing here commits. A workflow run is
taken from the LRU cache or rebuilt by replaying the journal (plus the entries
this activation already added), so both paths meet the same code.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from zenaton.exceptions import ExternalError

from . import waits
from .errors import SerializationError
from .instances import new_id, new_instance
from .models import Entry, InboxItem, Instance, InstanceStatus, JournalEntry, TaskRecord, TaskStatus, Timer
from .replay import Decision, WorkflowRun
from .replay.journal import inputs, recorded_requests
from .serializer import properties_of
from .store import UNSET, Batch, NewEntry
from .tasks import Outcome, describe_error

if TYPE_CHECKING:
    from .engine import Engine

RUNNING, PAUSED = InstanceStatus.RUNNING, InstanceStatus.PAUSED


def error_info(error: BaseException, traceback: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = describe_error(error)
    if traceback:
        info["traceback"] = traceback
    for attr in ("position", "recorded", "requested"):
        if hasattr(error, attr):
            info[attr] = getattr(error, attr)
    return info


def outcome_data(outcome: Outcome, attempt: int, **extra: Any) -> str:
    fields = {"attempt": attempt, "stdout": outcome.stdout, "stderr": outcome.stderr, **extra}
    text = json.dumps(fields)
    if outcome.ok:  # embed the encoded result as is, without encoding it twice
        return text[:-1] + ', "result": ' + (outcome.result or "null") + "}"
    return text


class Activation:
    def __init__(self, engine: Engine, instance: Instance, batch: Batch, now: float) -> None:
        self.engine = engine
        self.codec = engine.project.codec
        self.instance = instance
        self.id = instance.id
        self.batch = batch
        self.now = now
        self.status = instance.status
        self.error: Any = UNSET
        self.run: WorkflowRun | None = None
        self.appended: list[NewEntry] = []
        self.properties = instance.properties
        self._pending_properties: str | None = None

    # -- workflows -------------------------------------------------------
    def run_workflow(
        self, outcomes: list[tuple[TaskRecord, Outcome]], timers: list[Timer], inbox: list[InboxItem] | None
    ) -> None:
        if self.status is RUNNING:
            self.run = self._cached_or_rebuilt()
        if inbox is not None:  # first, so a pause or kill stops what the other inputs would start
            self.batch.consume_inbox(self.id, [item.id for item in inbox])
            for item in inbox:
                self._inbox_item(item)
        for task, outcome in outcomes:
            self._task_outcome(task, outcome)
        for timer in timers:
            self._timer(timer)
        self._finish()

    def _cached_or_rebuilt(self) -> WorkflowRun | None:
        run = self.engine.cache.get(self.id)
        if run is not None:
            return run
        return self._rebuild()

    def _rebuild(self) -> WorkflowRun | None:
        """Replay the whole journal into a fresh run; keep the decisions it adds."""
        self.engine.cache.evict(self.id)
        journal = self.engine.store.journal(self.id) + [self._as_entry(e) for e in self.appended]
        try:
            workflow = self.codec.decode(self.instance.data)
        except Exception as error:  # a class gone from the project, a corrupt payload
            self._pause_with_error(error_info(error))
            return None
        run = WorkflowRun(workflow, self.id, recorded_requests(journal), waits.fire_at)
        self.run = run
        decisions = run.start(self.now)
        for item in inputs(journal):
            if decisions and any(d.kind == "fail" for d in decisions):
                break
            decisions += self._deliver(run, item.kind, item.position, item.value)
        self._snapshot()
        self._decide(decisions)
        return self.run

    def _deliver(self, run: WorkflowRun, kind: str, position: int | None, value: Any) -> list[Decision]:
        if kind == "timer":
            return run.deliver_timer(position, self.now)  # type: ignore[arg-type]
        if kind == "event":
            return run.deliver_event(self.codec.decode(value), self.now)
        return run.deliver_result(position, self.codec.decode(json.dumps(value)), self.now)  # type: ignore[arg-type]

    def _task_outcome(self, task: TaskRecord, outcome: Outcome) -> None:
        if self.status.finished:
            self.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            return
        if outcome.ok:
            self.batch.update_task(task.id, status=TaskStatus.DONE)
            decisions: list[Decision] = []
            if self.run is not None and self.status is RUNNING:
                try:
                    value = self.codec.decode(outcome.result or "null")
                except SerializationError as error:
                    self._pause_with_error(error_info(error))
                    return
                decisions = self.run.deliver_result(task.position, value, self.now)
                self._snapshot()
            self._append(Entry.TASK_COMPLETED, task.position, task.name, outcome_data(outcome, task.attempts))
            self.engine.log(f"{self._label()}: task {task.name} completed (position {task.position})")
            self._decide(decisions)
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
        error.update(position=task.position, task=task.name, task_id=task.id, stdout=outcome.stdout, stderr=outcome.stderr)
        self._pause_with_error(error)

    def _timer(self, timer: Timer) -> None:
        self.batch.delete_timer(self.id, timer.position)
        if self.status.finished:
            return
        decisions: list[Decision] = []
        if self.run is not None and self.status is RUNNING:
            decisions = self.run.deliver_timer(timer.position, self.now)
            self._snapshot()
        self._append(Entry.TIMER_FIRED, timer.position)
        self.engine.log(f"{self._label()}: timer fired (position {timer.position})")
        self._decide(decisions)

    def _inbox_item(self, item: InboxItem) -> None:
        handler = getattr(self, f"_on_{item.kind}", None)
        if handler is None or self.status.finished:
            self.engine.log(f"{self._label()}: {item.kind} ignored (instance is {self.status.value})")
            return
        handler(item)

    def _on_event(self, item: InboxItem) -> None:
        decisions: list[Decision] = []
        if self.run is not None and self.status is RUNNING:
            waiting = set(self.run.pending_waits())
            try:
                event = self.codec.decode(item.data or "null")
            except SerializationError as error:
                self._pause_with_error(error_info(error))
                return
            decisions = self.run.deliver_event(event, self.now)
            for position in waiting - set(self.run.pending_waits()):
                self.batch.delete_timer(self.id, position)
            self._snapshot()
        self._append(Entry.EVENT_RECEIVED, None, item.name, item.data)
        self.engine.log(f"{self._label()}: event {item.name} received")
        self._decide(decisions)

    def _on_child_completed(self, item: InboxItem) -> None:
        payload = json.loads(item.data or "{}")
        position = payload["position"]
        decisions: list[Decision] = []
        if self.run is not None and self.status is RUNNING:
            decisions = self.run.deliver_result(position, self.codec.decode(json.dumps(payload["result"])), self.now)
            self._snapshot()
        data = json.dumps({"id": payload["id"], "result": payload["result"]})
        self._append(Entry.CHILD_COMPLETED, position, item.name, data)
        self._decide(decisions)

    def _on_pause(self, item: InboxItem) -> None:
        if self.status is not RUNNING:
            return
        self.status = PAUSED
        self._drop_run()
        self._append(Entry.PAUSED)
        self.engine.log(f"{self._label()}: paused")

    def _on_resume(self, item: InboxItem) -> None:
        if self.status is not PAUSED:
            return
        self._continue(Entry.RESUMED)

    def _on_retry(self, item: InboxItem) -> None:
        if self.status is not PAUSED or not self._has_error():
            return
        self._continue(Entry.RETRIED)

    def _on_kill(self, item: InboxItem) -> None:
        self.status = InstanceStatus.KILLED
        self._drop_run()
        self.batch.cancel_tasks(self.id)
        self.batch.delete_timers(self.id)
        self._append(Entry.KILLED)
        self.engine.log(f"{self._label()}: killed")

    def _continue(self, entry: Entry) -> None:
        """Resume or retry: re-queue the failed task if that was the error, then replay."""
        error = self._current_error()
        if error and error.get("task_id"):
            self.batch.update_task(error["task_id"], status=TaskStatus.QUEUED, retry_index=0, run_at=self.now)
        self.status = RUNNING
        self.error = None
        self._append(entry)
        self.engine.log(f"{self._label()}: {entry.value}")
        self._rebuild()

    # -- decisions -------------------------------------------------------
    def _decide(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if self.status is not RUNNING:
                return
            try:
                getattr(self, f"_decide_{decision.kind}")(decision)
            except (SerializationError, ExternalError) as error:
                self._pause_with_error(error_info(error))

    def _decide_task(self, d: Decision) -> None:
        data = self.codec.encode(d.job, d.name or "task")
        task_id = new_id()
        self.batch.add_task(
            TaskRecord(task_id, self.id, d.position, d.name, data, TaskStatus.QUEUED, 0, 0, self.now, self.now)  # type: ignore[arg-type]
        )
        self._append(Entry.TASK_SCHEDULED, d.position, d.name, json.dumps({"task_id": task_id, "group": d.group}))
        self.engine.log(f"{self._label()}: task {d.name} scheduled (position {d.position})")

    def _decide_child(self, d: Decision) -> None:
        self._start_instance(d, wait=True)

    def _decide_dispatch(self, d: Decision) -> None:
        self._start_instance(d, wait=False)

    def _start_instance(self, d: Decision, wait: bool) -> None:
        instance, started, task = new_instance(
            self.codec, d.job, env=self.instance.env, now=self.now, parent_id=self.id,
            parent_position=d.position if wait else None,
        )
        self.batch.create_instance(instance, started, task)
        data = json.dumps({"id": instance.id, "kind": instance.kind.value, "wait": wait})
        self._append(Entry.DISPATCHED, d.position, d.name, data)
        self.engine.log(f"{self._label()}: dispatched {instance.kind.value} {d.name} as {instance.id[:8]}")

    def _decide_wait(self, d: Decision) -> None:
        self._append(Entry.WAIT_STARTED, d.position, d.name, json.dumps({"event": d.event, "fire_at": d.fire_at}))
        if d.fire_at is not None:
            self.batch.add_timer(Timer(self.id, d.position, d.fire_at))  # type: ignore[arg-type]
        self.engine.log(f"{self._label()}: waiting for {d.name} (position {d.position})")

    def _decide_complete(self, d: Decision) -> None:
        result = self.codec.encode(d.result, "result")
        self._snapshot()
        self._append(Entry.COMPLETED, data='{"result": ' + result + "}")
        self.status = InstanceStatus.COMPLETED
        self._drop_run()
        self.batch.delete_timers(self.id)
        if self.instance.parent_id and self.instance.parent_position is not None:
            payload = '{"position": %d, "id": "%s", "result": %s}' % (self.instance.parent_position, self.id, result)
            self.batch.post(self.instance.parent_id, "child_completed", self.instance.name, payload)
        self.engine.log(f"{self._label()}: completed")

    def _decide_fail(self, d: Decision) -> None:
        assert d.error is not None
        self._pause_with_error(error_info(d.error, d.traceback))

    # -- bookkeeping -----------------------------------------------------
    def _pause_with_error(self, error: dict[str, Any]) -> None:
        self.status = PAUSED
        self.error = error
        self._drop_run()
        self._append(Entry.ERROR, error.get("position"), error.get("class"), json.dumps(error))
        self.engine.log(f"{self._label()}: paused by error {error.get('class')}: {error.get('message')}")

    def _has_error(self) -> bool:
        return bool(self._current_error())

    def _current_error(self) -> dict[str, Any] | None:
        if self.error is not UNSET:
            return self.error
        return json.loads(self.instance.error) if self.instance.error else None

    def _drop_run(self) -> None:
        self.engine.cache.evict(self.id)
        self.run = None

    def _snapshot(self) -> None:
        if self.run is None:
            return
        try:
            encoded = self.codec.encode(properties_of(self.run.workflow), self.instance.name)
        except SerializationError as error:
            self._pause_with_error(error_info(error))
            return
        if encoded != self.properties:
            self.properties = encoded
            self._pending_properties = encoded

    def _append(self, type: Entry, position: int | None = None, name: str | None = None, data: str | None = None) -> None:
        entry = NewEntry(self.id, type, position, name, data, self._pending_properties)
        self._pending_properties = None
        self.appended.append(entry)
        self.batch.append(entry)

    def _as_entry(self, entry: NewEntry) -> JournalEntry:
        return JournalEntry(self.id, 0, entry.type, entry.position, entry.name, entry.data, entry.properties, self.now)

    def _finish(self) -> None:
        if self.run is not None and self.status is RUNNING:
            self.engine.cache.put(self.id, self.run)  # evicting others only once we are done with them
        changed_status = self.status is not self.instance.status
        changed_properties = self.properties != self.instance.properties
        if changed_status or changed_properties or self.error is not UNSET:
            self.batch.update_instance(
                self.id,
                status=self.status if changed_status else None,
                properties=self.properties if changed_properties else UNSET,
                error=UNSET if self.error is UNSET else (json.dumps(self.error) if self.error else None),
            )

    def _label(self) -> str:
        return f"{self.instance.name} {self.id[:8]}"

    # -- standalone tasks ------------------------------------------------
    def run_task_outcomes(self, outcomes: list[tuple[TaskRecord, Outcome]], inbox: list[InboxItem] | None) -> None:
        for task, outcome in outcomes:
            if self.status.finished:
                self.batch.update_task(task.id, status=TaskStatus.CANCELLED)
            elif outcome.ok:
                self.batch.update_task(task.id, status=TaskStatus.DONE)
                self._append(Entry.TASK_COMPLETED, 0, task.name, outcome_data(outcome, task.attempts))
                self.status = InstanceStatus.COMPLETED
                self.engine.log(f"{self._label()}: completed")
            else:
                self._standalone_failure(task, outcome)
        if inbox is not None:
            self.batch.consume_inbox(self.id, [item.id for item in inbox])
            for item in inbox:
                if item.kind == "kill" and not self.status.finished:
                    self._on_kill(item)
                elif item.kind == "retry" and self.status is InstanceStatus.FAILED:
                    error = self._current_error() or {}
                    self.batch.update_task(error["task_id"], status=TaskStatus.QUEUED, retry_index=0, run_at=self.now)
                    self.status, self.error = RUNNING, None
                    self._append(Entry.RETRIED)
        self._finish()

    def _standalone_failure(self, task: TaskRecord, outcome: Outcome) -> None:
        delay = outcome.retry_delay
        self._append(Entry.TASK_FAILED, 0, task.name, outcome_data(outcome, task.attempts, error=outcome.error, retry_in=delay))
        if delay:
            self.batch.update_task(task.id, status=TaskStatus.QUEUED, retry_index=task.retry_index + 1, run_at=self.now + delay)
            return
        self.batch.update_task(task.id, status=TaskStatus.FAILED)
        error = dict(outcome.error or {})
        error.update(position=0, task=task.name, task_id=task.id, stdout=outcome.stdout, stderr=outcome.stderr)
        self.status, self.error = InstanceStatus.FAILED, error
        self._append(Entry.ERROR, 0, error.get("class"), json.dumps(error))
        self.engine.log(f"{self._label()}: failed with {error.get('class')}: {error.get('message')}")

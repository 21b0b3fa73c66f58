"""WorkflowRun: handle() in a greenlet, suspended at its pending request."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

import greenlet

from zenaton._jobs import check_custom_id
from zenaton._runtime import current_runtime
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.contexts.workflow_context import WorkflowContext, current_workflow_context
from zenaton.exceptions import ExternalError, InvalidArgumentError
from zenaton.tasks.wait import Wait
from zenaton_runtime.errors import EngineInterrupt
from zenaton_runtime.replay.calls import answered, found, scheduled
from zenaton_runtime.replay.deadline import DecisionTimeout, arm, disarm, time_limit
from zenaton_runtime.replay.requests import (
    CHILD,
    CONTROLS,
    DISPATCH,
    FIND,
    SCHEDULE,
    SEND_EVENT,
    TASK,
    WAIT,
    Decision,
    DecisionKind,
    NonDeterminismError,
    Recorded,
)

FireAt = Callable[[list[Any], str, float], "float | None"]  # timing.waits.fire_at


class _Violation(EngineInterrupt):
    """Thrown into handle() at a non-deterministic request; a BaseException, so that
    user code's ``except Exception`` cannot skip the request and carry on."""


class _Blocked:
    """Sent from the workflow greenlet to the engine: waiting on these positions."""

    def __init__(self, positions: Sequence[int]) -> None:
        self.positions = tuple(positions)


class WorkflowRun:
    """One instance's handle(), driven input by input. No I/O, no wall clock.

    ``recorded`` holds the requests the journal already decided (by position);
    ``fire_at`` computes a Wait's fire time from its buffer, timezone and now.
    """

    def __init__(
        self,
        workflow: Workflow,
        instance_id: str,
        recorded: dict[int, Recorded],
        fire_at: FireAt,
        time_limit: float | None = None,
    ) -> None:
        self.workflow = workflow
        self.instance_id = instance_id
        self.recorded = dict(recorded)
        self._fire_at = fire_at
        self._time_limit = time_limit
        self._now = 0.0
        self._next_position = 1
        self._outcomes: dict[int, Any] = {}
        self._waiting: tuple[int, ...] = ()
        self._waits: dict[int, str | None] = {}  # pending wait position -> event name
        self._decisions: list[Decision] = []
        self._greenlet: greenlet.greenlet | None = None
        self.finished = False
        self.requested: set[int] = set()
        self.violation: NonDeterminismError | None = None

    # -- driving ---------------------------------------------------------
    def start(self, now: float) -> list[Decision]:
        """Run handle() until it blocks or ends."""
        self._greenlet = greenlet.greenlet(self._main)
        return self._switch(now)

    def deliver_result(self, position: int, value: Any, now: float) -> list[Decision]:
        """A task, child workflow or wait finished at this position."""
        if position in self._waits:
            del self._waits[position]
        self._outcomes[position] = value
        return self._resume_if_unblocked(now)

    def deliver_timer(self, position: int, now: float) -> list[Decision]:
        """A wait's time ran out; ignored if an event already ended it."""
        if position not in self._waits:
            return []
        return self.deliver_result(position, None, now)

    def deliver_event(self, event: Any, now: float) -> list[Decision]:
        """on_event(event), then the oldest pending wait for this event class gets it."""
        self._now = now
        self._decisions = []
        if self.finished:
            return []
        token = current_runtime.set(_ReplayRuntime(self, in_handle=False))
        context = current_workflow_context.set(WorkflowContext(id=self.instance_id))
        try:
            with time_limit(self._time_limit):
                self.workflow.on_event(event)
        except DecisionTimeout as error:
            return self._fail(error)
        except _Violation:
            assert self.violation is not None
            return self._fail(self.violation)
        except EngineInterrupt:
            raise
        except BaseException as error:  # user code: becomes a fail decision
            return self._fail(error)
        finally:
            current_runtime.reset(token)
            current_workflow_context.reset(context)
        decisions = self._decisions
        for position, name in sorted(self._waits.items()):
            if name == type(event).__name__:
                return decisions + self.deliver_result(position, event, now)
        return decisions

    def close(self) -> None:
        """Drop the suspended greenlet (eviction, kill)."""
        if self._greenlet is not None and not self._greenlet.dead:
            try:
                self._greenlet.throw(EngineInterrupt())
            except EngineInterrupt:
                pass
        self._greenlet = None

    def pending_waits(self) -> list[int]:
        """Positions of the waits not yet ended."""
        return list(self._waits)

    def unrequested(self) -> list[Recorded]:
        """Journal requests the code has not (yet) asked for."""
        return [r for p, r in sorted(self.recorded.items()) if p not in self.requested]

    # -- internals ---------------------------------------------------------
    def _resume_if_unblocked(self, now: float) -> list[Decision]:
        if self.finished or not self._waiting:
            return []
        if not all(p in self._outcomes for p in self._waiting):
            return []
        return self._switch(now)

    def _switch(self, now: float) -> list[Decision]:
        self._now = now
        self._decisions = []
        assert self._greenlet is not None
        armed = arm(self._time_limit)
        try:
            try:
                signal = self._greenlet.switch()
            finally:
                if armed:
                    disarm()
        except DecisionTimeout as error:  # the alarm went off just as the code gave control back
            self.close()
            self.finished = True
            return self._fail(error)
        if isinstance(signal, _Blocked):
            self._waiting = signal.positions
        return self._decisions

    def _main(self) -> None:
        token = current_runtime.set(_ReplayRuntime(self, in_handle=True))
        current_workflow_context.set(WorkflowContext(id=self.instance_id))
        try:
            result = self.workflow.handle()
            missing = self.unrequested()
            if missing and self.violation is None:
                first = missing[0]
                raise NonDeterminismError(
                    self.instance_id, first.position, f"{first.kind} {first.name}", "nothing (handle() returned)"
                )
            if self.violation is not None:  # user code swallowed the interrupt: still a failure
                raise _Violation()
        except _Violation:
            assert self.violation is not None
            self._fail(self.violation)
            self.finished = True
            return
        except DecisionTimeout as error:
            self._fail(error)
            self.finished = True
            return
        except EngineInterrupt:
            self.finished = True
            return
        except BaseException as error:
            self._fail(error)
            self.finished = True
            return
        finally:
            current_runtime.reset(token)
        self.finished = True
        self._decisions.append(Decision(DecisionKind.COMPLETE, result=result))

    def _fail(self, error: BaseException) -> list[Decision]:
        self._decisions.append(Decision(DecisionKind.FAIL, error=error, traceback=_format(error)))
        return self._decisions

    def block(self, positions: Sequence[int]) -> list[Any]:
        """Called from inside handle(): suspend until every position has an outcome."""
        if not all(p in self._outcomes for p in positions):
            parent = greenlet.getcurrent().parent
            self._waiting = tuple(positions)
            while True:
                parent.switch(_Blocked(positions))
                if all(p in self._outcomes for p in positions):
                    break
        self._waiting = ()
        return [self._outcomes.pop(p) for p in positions]

    def request(self, kind: DecisionKind, name: str, **details: Any) -> int:
        """Allocate the next position; check it against the journal or decide it anew."""
        if self.violation is not None:
            raise _Violation()
        position = self._next_position
        self._next_position += 1
        self.requested.add(position)
        recorded = self.recorded.get(position)
        if recorded is not None:
            if (recorded.kind, recorded.name) != (kind, name):
                self.violation = NonDeterminismError(
                    self.instance_id, position, f"{recorded.kind} {recorded.name}", f"{kind} {name}"
                )
                raise _Violation()
            if kind == WAIT:
                self._waits[position] = details.get("event")
            return position
        if kind == WAIT:
            buffer, timezone = details.pop("buffer"), details.pop("timezone")
            details["fire_at"] = self._fire_at(buffer, timezone, self._now) if buffer else None
            self._waits[position] = details.get("event")
        self._decisions.append(Decision(kind, position=position, name=name, **details))
        self.recorded[position] = Recorded(position, kind, name, details.get("fire_at"))
        return position


class _ReplayRuntime:
    """The SDK's runtime while a workflow decides."""

    def __init__(self, run: WorkflowRun, in_handle: bool) -> None:
        self.run = run
        self.in_handle = in_handle

    def execute(self, jobs: Sequence[Any]) -> list[Any]:
        if not self.in_handle:
            raise ExternalError("on_event() may dispatch tasks and workflows but not execute them")
        jobs = list(jobs)
        group = self.run._next_position if len(jobs) > 1 else None
        positions = []
        for job in jobs:
            if isinstance(job, Wait):
                raise InvalidArgumentError("Wait cannot run inside Parallel")
            kind = CHILD if isinstance(job, Workflow) else TASK
            positions.append(self.run.request(kind, _name(job), job=job, group=group))
        return self.run.block(positions)

    def dispatch(self, jobs: Sequence[Any]) -> None:
        for job in jobs:
            self.run.request(DISPATCH, _name(job), job=job)

    def dispatch_many(self, jobs: Sequence[Any]) -> list[str | None]:
        self.dispatch(jobs)  # ids are not known while deciding: replay must not depend on them
        return [None] * len(jobs)

    def wait(self, wait: Wait) -> Any:
        if not self.in_handle:
            raise ExternalError("on_event() cannot wait")
        if wait.event is None and not wait.buffer:
            raise InvalidArgumentError("Wait() needs an event class, a duration or a date")
        position = self.run.request(
            WAIT, wait.event or "Wait", event=wait.event, buffer=list(wait.buffer), timezone=wait.timezone
        )
        return self.run.block([position])[0]

    # -- calls to other instances: requests answered in the step that decides them ------
    def find(self, workflow_class: type, custom_id: Any) -> Any:
        answer = self._call("where_id().find()", FIND, workflow_class.__name__, custom_id=check_custom_id(custom_id))
        return found(workflow_class, answer)

    def send_event(self, workflow_class: type, custom_id: Any, event: Any) -> None:
        name = type(event).__name__
        self._call(
            "where_id().send_event()",
            SEND_EVENT,
            workflow_class.__name__,
            custom_id=check_custom_id(custom_id),
            job=event,
            event=name,
        )

    def control(self, workflow_class: type, custom_id: Any, action: str) -> None:
        kind = CONTROLS.get(action)
        if kind is None:
            raise InvalidArgumentError(f"unknown action {action!r}: pause, resume or kill")
        self._call(f"where_id().{action}()", kind, workflow_class.__name__, custom_id=check_custom_id(custom_id))

    def schedule(self, job: Any, cron: str) -> Any:
        return scheduled(self._call("schedule()", SCHEDULE, _name(job), job=job, cron=cron))

    def _call(self, what: str, kind: DecisionKind, name: str, **details: Any) -> dict[str, Any]:
        """Request the call and wait at it for its answer: the engine journals it in this step."""
        if not self.in_handle:
            raise ExternalError(f"on_event() cannot call {what}: call it from handle()")
        position = self.run.request(kind, name, **details)
        return answered(self.run.block([position])[0])


def _name(job: Any) -> str:
    if isinstance(job, (Task, Workflow)):
        return type(job).__name__
    raise InvalidArgumentError(f"You can only execute or dispatch Zenaton Task or Workflow, not {type(job).__name__}")


def _format(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))

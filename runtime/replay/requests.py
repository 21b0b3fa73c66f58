"""What a workflow asks for (requests) and what the engine must do (decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zenaton.exceptions import InternalError
from zenaton_runtime.models import TextEnum


class DecisionKind(TextEnum):
    """What a decision asks the engine to do. All but the last two are requests, recorded in the
    journal by position; the last two end the decision (and the run, for ``complete``).

    The calls to other instances (``send_event`` to ``schedule``) are answered by the engine in
    the step that decides them: handle() waits at the call until the answer is journaled, then
    gets it (or the refusal raised), as it gets a task's result; replay reads it back."""

    TASK = "task"  # execute a task: wait for its result
    CHILD = "child"  # execute a workflow: wait for it to complete
    WAIT = "wait"  # Wait(...).execute()
    DISPATCH = "dispatch"  # dispatch a task or workflow: fire and forget
    SEND_EVENT = "send_event"  # where_id(...).send_event(event): an event to its inbox
    PAUSE = "pause"  # where_id(...).pause()
    RESUME = "resume"  # where_id(...).resume()
    KILL = "kill"  # where_id(...).kill()
    FIND = "find"  # where_id(...).find(): its properties as the store holds them then
    SCHEDULE = "schedule"  # job.schedule(cron): a cron schedule added
    COMPLETE = "complete"  # handle() returned
    FAIL = "fail"  # the workflow's code failed (or broke determinism)


TASK, CHILD, WAIT, DISPATCH = DecisionKind.TASK, DecisionKind.CHILD, DecisionKind.WAIT, DecisionKind.DISPATCH
SEND_EVENT, FIND, SCHEDULE = DecisionKind.SEND_EVENT, DecisionKind.FIND, DecisionKind.SCHEDULE
CONTROLS = {"pause": DecisionKind.PAUSE, "resume": DecisionKind.RESUME, "kill": DecisionKind.KILL}  # by action
CALLS = frozenset({SEND_EVENT, *CONTROLS.values(), FIND, SCHEDULE})  # answered in the step that decides them


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Recorded:
    """A request already decided, as the journal holds it."""

    position: int
    kind: DecisionKind
    name: str | None
    fire_at: float | None = None


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Decision:
    """One thing the engine must persist and then do."""

    kind: DecisionKind
    position: int | None = None
    name: str | None = None
    job: Any = None  # the task or workflow object to run / start; send_event: the event; schedule: the job
    group: int | None = None  # first position of a Parallel, when in one
    event: str | None = None  # wait, send_event: the event class name
    custom_id: str | None = None  # a call to another instance: the custom id where_id() was given
    cron: str | None = None  # schedule: the cron expression
    fire_at: float | None = None  # wait: when the timer fires
    result: Any = None  # complete: handle()'s return value
    error: BaseException | None = None  # fail: what went wrong
    traceback: str | None = None


class NonDeterminismError(InternalError):
    """The workflow's code asked for something other than what its journal holds."""

    def __init__(self, instance_id: str, position: int, recorded: str, requested: str) -> None:
        super().__init__(
            f"non-deterministic workflow: instance {instance_id}, position {position}: "
            f"the journal holds {recorded} but the code requested {requested}"
        )
        self.position = position
        self.recorded = recorded
        self.requested = requested

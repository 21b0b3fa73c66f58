"""What a workflow asks for (requests) and what the engine must do (decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zenaton.exceptions import InternalError
from zenaton_runtime.models import TextEnum


class DecisionKind(TextEnum):
    """What a decision asks the engine to do. The first four are requests, recorded in the
    journal by position; the last two end the decision (and the run, for ``complete``)."""

    TASK = "task"  # execute a task: wait for its result
    CHILD = "child"  # execute a workflow: wait for it to complete
    WAIT = "wait"  # Wait(...).execute()
    DISPATCH = "dispatch"  # dispatch a task or workflow: fire and forget
    COMPLETE = "complete"  # handle() returned
    FAIL = "fail"  # the workflow's code failed (or broke determinism)


TASK, CHILD, WAIT, DISPATCH = DecisionKind.TASK, DecisionKind.CHILD, DecisionKind.WAIT, DecisionKind.DISPATCH


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
    job: Any = None  # the task or workflow object to run / start
    group: int | None = None  # first position of a Parallel, when in one
    event: str | None = None  # wait: the event class name
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

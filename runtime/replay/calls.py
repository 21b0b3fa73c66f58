"""A workflow's calls to other instances, as handle() sees their answers.

``where_id(...).send_event()``, ``.pause()``, ``.resume()``, ``.kill()``, ``.find()`` and
``job.schedule(cron)`` are requests: the engine decides each once, in the step that asks, and
journals its answer at the call's position (``engine/calls.py``). The answer reaches the run as
the call's result, decoded from that journal entry, both when it is decided and on replay; this
module turns it into what the SDK call returns, or raises the refusal it records.
"""

from __future__ import annotations

from typing import Any

import zenaton.exceptions as sdk_errors
from zenaton.workflows.version import Version
from zenaton_runtime.models import Kind, Schedule


def refusal(error: BaseException) -> dict[str, str]:
    """How the journal keeps a refused call: the SDK error class a client would get (the
    nearest one the error derives from) and its message."""
    for cls in type(error).__mro__:
        if cls.__module__ == sdk_errors.__name__:
            return {"class": cls.__name__, "message": str(error)}
    return {"class": sdk_errors.ExternalError.__name__, "message": str(error)}


def refused_error(info: Any) -> Exception:
    """The SDK error a journaled refusal stands for (ExternalError for a class it does not know)."""
    info = info if isinstance(info, dict) else {}
    cls = getattr(sdk_errors, str(info.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, sdk_errors.Error)):
        cls = sdk_errors.ExternalError
    return cls(str(info.get("message", "refused")))


def answered(answer: Any) -> dict[str, Any]:
    """The decoded journal entry of a call; raises the refusal it records, if any."""
    if not isinstance(answer, dict):
        raise sdk_errors.InternalError(f"a call's journaled answer should be an object, not {answer!r}")
    if answer.get("refused"):
        raise refused_error(answer["refused"])
    return answer


def implementation(workflow_class: type, version: str | None) -> type:
    """The class an instance runs: for a Version, the implementation it started with."""
    if version and issubclass(workflow_class, Version):
        for candidate in workflow_class.__new__(workflow_class).versions():
            if candidate.__name__ == version:
                return candidate
    return workflow_class


def found_workflow(workflow_class: type, properties: Any, version: str | None) -> Any:
    """What ``find()`` returns for an instance's decoded properties (or its object as dispatched,
    when no step has run yet): a workflow object of the class it runs."""
    if not isinstance(properties, dict):
        return properties  # the workflow object as dispatched
    cls: Any = implementation(workflow_class, version)
    found = cls.__new__(cls)
    found.__dict__.update(properties)
    return found


def found(workflow_class: type, answer: dict[str, Any]) -> Any:
    """``find()``'s result from its answer: None when no instance had that id then."""
    if answer.get("id") is None:
        return None
    return found_workflow(workflow_class, answer.get("properties"), answer.get("version"))


def schedule_fields(schedule: Schedule) -> dict[str, Any]:
    """A schedule as its journal entry keeps it (every field: ``scheduled()`` rebuilds it)."""
    fields = {name: getattr(schedule, name) for name in Schedule.__dataclass_fields__}
    fields["kind"] = schedule.kind.value
    return fields


def scheduled(answer: dict[str, Any]) -> Schedule:
    """``schedule()``'s result from its answer: the schedule as it was added."""
    fields = dict(answer["schedule"])
    fields["kind"] = Kind(fields["kind"])
    return Schedule(**fields)

"""``replay``: an exported journal replayed against the current code, as a regression test.

The run is rebuilt the engine's way (``check.replayer.rebuild``): if the code asks, at some
position, for something other than the journal holds, the engine's own ``NonDeterminismError``
is raised, naming the position, what the journal holds and what the code asks for.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenaton.abstracts.workflow import Workflow
from zenaton.workflows.version import Version
from zenaton_runtime.check.document import Document, DocumentError, read_document
from zenaton_runtime.check.replayer import fails_as_before, rebuild
from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.models import JournalEntry, Kind
from zenaton_runtime.project.loader import Project
from zenaton_runtime.project.serializer import Codec, properties_of
from zenaton_runtime.replay import DecisionKind, NonDeterminismError
from zenaton_runtime.testing.environment import find_project


@dataclass
class Replayed:
    """Where the replayed run stands at the end of its journal."""

    workflow: Workflow  # the workflow object as the replay left it
    properties: dict[str, Any]  # its properties
    completed: bool  # handle() returned
    result: Any  # what it returned, when it did
    next: list[str]  # what the code asks for beyond the journal ("task SendReminder", ...)
    error: BaseException | None  # the code's failure, when the instance was paused with it already


def replay(
    source: str | os.PathLike[str] | dict[str, Any],
    workflow_class: type | None = None,
    *,
    run: int | None = None,
    project: str | os.PathLike[str] | None = None,
) -> Replayed:
    """Replay the journal of an export document (a file, or the dict ``Run.export()`` returns)
    against ``workflow_class`` (default: the class the instance was dispatched with, as the
    daemon would). ``run``: an archived run's number instead of the current run. ``project``: the
    project's directory, whose modules the journal's values may name (default: found from the
    workflow class's file). Raises ``NonDeterminismError`` where the code and the journal part,
    ``DocumentError`` for a document that cannot be read, and the code's own exception if it
    fails where the journal says it did not."""
    document = read_document(source)
    instance = document.instance
    if instance.kind is not Kind.WORKFLOW:
        raise DocumentError(f"{document.source}: instance {instance.id} is a task: only a workflow's journal replays")
    codec = _codec(workflow_class, project)
    workflow = None if workflow_class is None else _workflow(document, workflow_class, codec)
    rebuilt = rebuild(codec, instance, _journal(document, run), now=time.time(), time_limit=10.0, workflow=workflow)
    try:
        error = rebuilt.error
        if error is not None and (
            isinstance(error, NonDeterminismError) or rebuilt.run is None or not fails_as_before(instance, error)
        ):
            raise error
        assert rebuilt.run is not None
        done = [d for d in rebuilt.decisions if d.kind is DecisionKind.COMPLETE]
        asked = [f"{d.kind} {d.name}" for d in rebuilt.decisions if d.position is not None]
        return Replayed(
            workflow=rebuilt.run.workflow,
            properties=properties_of(rebuilt.run.workflow),
            completed=bool(done),
            result=done[0].result if done else None,
            next=asked,
            error=error,
        )
    finally:
        rebuilt.close()


def _codec(workflow_class: type | None, project: str | os.PathLike[str] | None) -> Codec:
    """A codec trusting the project's modules (and the workflow class's own module)."""
    if project is not None:
        root = Path(project)
    elif workflow_class is not None:
        home = Path(inspect.getfile(workflow_class)).resolve().parent
        root = find_project(home) or home
    else:
        root = find_project(Path.cwd()) or Path.cwd()
    trusted = Project(root)
    module = workflow_class.__module__ if workflow_class is not None else None
    return Codec(lambda name: name == module or trusted.is_project_module(name))


def _workflow(document: Document, workflow_class: type, codec: Codec) -> Workflow:
    """The instance's workflow object, rebuilt as an object of ``workflow_class`` (for a Version,
    of the implementation the instance runs)."""
    if not (isinstance(workflow_class, type) and issubclass(workflow_class, Workflow)):
        raise TypeError(f"replay() takes a Workflow class, not {workflow_class!r}")
    cls: type = workflow_class
    version = document.instance.version
    if issubclass(workflow_class, Version):
        implementations = workflow_class.__new__(workflow_class).versions()
        found = [c for c in implementations if c.__name__ == version]
        if not found:
            names = ", ".join(c.__name__ for c in implementations)
            raise ZenatonError(
                f"{workflow_class.__name__}.versions() ({names}) has no {version}, which instance "
                f"{document.instance.id} runs: it could not continue"
            )
        cls = found[0]
    node = json.loads(document.instance.data)
    if not (isinstance(node, dict) and node.get("$") == "obj"):
        raise DocumentError(f"{document.source}: the instance's data is not an encoded workflow object")
    node["cls"] = f"{cls.__module__}:{cls.__qualname__}"
    workflow: Workflow = codec.decode(json.dumps(node))
    return workflow


def _journal(document: Document, run: int | None) -> list[JournalEntry]:
    """The current run's journal, or archived run ``run``'s: the entries before its cut, then
    its archived tail (as ``inspect --all-runs`` shows it)."""
    current = document.archive[-1].run + 1 if document.archive else 1
    if run is None or run == current:
        return document.journal
    entries = document.journal
    for archived in reversed(document.archive):
        cut = archived.entries[0].seq if archived.entries else 0
        entries = [e for e in entries if e.seq < cut] + list(archived.entries)
        if archived.run == run:
            return entries
    numbers = ", ".join(str(r.run) for r in document.archive) or "none archived"
    raise DocumentError(f"{document.source}: no run {run} (current run {current}; archived: {numbers})")

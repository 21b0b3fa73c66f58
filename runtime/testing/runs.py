"""An instance as a test sees it: ``Run`` (status, result, steps, properties step by step, the
journal, control) and ``Step``. Everything is read from the environment's store at each access,
so a run always shows what the engine has done so far."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from zenaton_runtime.check.document import export_document
from zenaton_runtime.client.inspect_views import MARKERS, shown, steps
from zenaton_runtime.models import Entry, Instance, InstanceStatus, JournalEntry, Kind
from zenaton_runtime.project.serializer import Codec, properties_of

if TYPE_CHECKING:
    from zenaton_runtime.testing.environment import WorkflowEnvironment

MARKER_KINDS = frozenset(MARKERS.values()) | {"rewind"}  # timeline items that are not a request
RESULT_KINDS = ("task", "parallel", "workflow", "wait")  # steps whose result is a value delivered to handle()
_NOT_A_STEP = (Entry.ERROR, Entry.REWOUND, Entry.REWIND_REFUSED)  # entries with a position that are markers
_NO_TEXT: Any = object()


class Step:
    """One item of a run's timeline, as ``zenaton inspect --json`` shows it (``view``), with its
    result and the workflow's properties after it decoded by the project's codec: real objects,
    not their JSON. ``result``: a task's or child workflow's result, a wait's event (None when it
    timed out); for a marker (event, pause, error ...), what inspect shows."""

    def __init__(self, view: dict[str, Any], codec: Codec, result: Any, properties: Any) -> None:
        self.view = view
        self.position: int | None = view["position"]
        self.kind: str = view["kind"]
        self.name: str | None = view["name"]
        self.status: str = view["status"]
        self.attempts: int = view["attempts"]
        self.error: dict[str, Any] | None = view["error"]
        self.output: list[dict[str, Any]] = view["output"]
        self.started_at: str | None = view["started_at"]
        self.finished_at: str | None = view["finished_at"]
        self._codec = codec
        self._result = result
        self._properties = properties

    @property
    def result(self) -> Any:
        if self._result is _NO_TEXT:
            return self.view["result"]
        return None if self._result is None else self._codec.decode(self._result)

    @property
    def properties(self) -> dict[str, Any]:
        """The workflow's properties once this step was journaled."""
        if self._properties is _NO_TEXT:
            shown_properties: dict[str, Any] = self.view["properties"]
            return shown_properties
        return decoded_properties(self._codec, self._properties)

    @property
    def is_step(self) -> bool:
        """A request of the workflow at a position (task, wait, child ...), not a marker."""
        return bool(self.position) and self.kind not in MARKER_KINDS

    def line(self) -> str:
        """The step on one line, for failure messages."""
        position = str(self.position) if self.is_step else "-"
        text = f"{position:>3}  {self.kind:<9} {self.name or '':<28} {self.status}"
        if self.error:
            text += f"  {self.error.get('class')}: {self.error.get('message')}"
        elif self.view.get("fire_at") and self.status == "waiting":
            text += f"  (until {self.view['fire_at']})"
        elif self.view["result"] is not None and self.status in ("completed", "received", "done"):
            text += f"  -> {_short(self.view['result'])}"
        return text

    def __repr__(self) -> str:
        where = "" if self.position is None else f" {self.position}"
        return f"<Step{where} {self.kind} {self.name}: {self.status}>"


def decoded_properties(codec: Codec, text: str) -> dict[str, Any]:
    value = codec.decode(text)
    return value if isinstance(value, dict) else properties_of(value)


class Run:
    """One instance in a ``WorkflowEnvironment``. Reading it never moves the engine; the
    ``until_*`` methods and the controls do."""

    def __init__(self, env: WorkflowEnvironment, instance_id: str) -> None:
        self.env = env
        self.id = instance_id

    # -- what it is ------------------------------------------------------------------------
    @property
    def instance(self) -> Instance:
        instance = self.env.store.get_instance(self.id)
        if instance is None:  # only a store emptied under the run does this
            raise LookupError(f"no instance {self.id} in this environment")
        return instance

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def custom_id(self) -> str | None:
        return self.instance.custom_id

    @property
    def version(self) -> str | None:
        """For a ``Version``, the implementation this instance runs."""
        return self.instance.version

    @property
    def status(self) -> str:
        """``running``, ``paused``, ``completed``, ``killed`` (or ``failed``, a standalone task)."""
        return self.instance.status.value

    @property
    def result(self) -> Any:
        """What ``handle()`` returned; an AssertionError that says why when it has not completed."""
        instance = self.instance
        if instance.status is not InstanceStatus.COMPLETED:
            raise AssertionError(self.describe(f"has no result: it is {instance.status.value}"))
        for entry in reversed(self.journal):
            if entry.type is Entry.COMPLETED or (entry.type is Entry.TASK_COMPLETED and instance.kind is Kind.TASK):
                return self.env.project.codec.decode(json.dumps(json.loads(entry.data or "{}").get("result")))
        raise AssertionError(self.describe("is completed but its journal holds no result"))

    @property
    def error(self) -> dict[str, Any] | None:
        """The error it is stopped with ({"class", "message", "traceback", ...}), or None."""
        text = self.instance.error
        error: dict[str, Any] | None = json.loads(text) if text else None
        return error

    @property
    def journal(self) -> list[JournalEntry]:
        """Its journal entries, as the store holds them."""
        return self.env.store.journal(self.id)

    @property
    def steps(self) -> list[Step]:
        """One Step per position (task, parallel task, child workflow, dispatch, wait ...), in order."""
        return [s for s in self._timeline() if s.is_step]

    @property
    def timeline(self) -> list[Step]:
        """Everything ``zenaton inspect`` shows: the steps and the markers (events, pauses, errors,
        completion ...), in journal order."""
        return self._timeline()

    def step(self, position: int) -> Step:
        for step in self.steps:
            if step.position == position:
                return step
        raise AssertionError(self.describe(f"has no step {position}"))

    def properties(self, step: int | None = None) -> dict[str, Any]:
        """The workflow's properties now, or once step ``step`` (a position) was journaled."""
        if step is not None:
            return self.step(step).properties
        instance = self.instance
        return decoded_properties(self.env.project.codec, instance.properties or instance.data)

    @property
    def children(self) -> list[Run]:
        """The instances it started (executed or dispatched), oldest first."""
        found = self.env.store.list_instances(parent_id=self.id)
        return [Run(self.env, i.id) for i in reversed(found)]

    @property
    def parent(self) -> Run | None:
        parent_id = self.instance.parent_id
        return None if parent_id is None else Run(self.env, parent_id)

    # -- moving it ---------------------------------------------------------------------------
    def until_waiting(self) -> Run:
        """Run everything that can run now, without moving the clock: afterwards the instance
        waits (on the clock, an event, a child) or is done."""
        self.env.run_until_idle()
        return self

    def until_complete(self, within: Any = None) -> Any:
        """Run it to completion, moving the clock to each next due time (waits, retries,
        schedules) while nothing else can run; returns its result. ``within`` (a timedelta or
        seconds): at most that much simulated time. AssertionError, with its steps, if it pauses,
        is killed, or waits on something the clock cannot bring (an event)."""
        self.env.run_until_idle()
        self.env.skip_time(until=lambda: self.instance.status is not InstanceStatus.RUNNING, within=within)
        status = self.instance.status
        if status is InstanceStatus.RUNNING:
            waiting = "; ".join(self._waiting_for()) or "nothing the engine knows of"
            raise AssertionError(self.describe(f"did not complete: it still waits for {waiting}"))
        if status is not InstanceStatus.COMPLETED:
            raise AssertionError(self.describe(f"did not complete: it is {status.value}"))
        return self.result

    def send_event(self, event: Any) -> Run:
        self.env.send_event(self, event)
        return self

    def pause(self) -> Run:
        self.env.pause(self)
        return self

    def resume(self) -> Run:
        self.env.resume(self)
        return self

    def kill(self) -> Run:
        self.env.kill(self)
        return self

    def retry(self) -> Run:
        self.env.retry(self)
        return self

    def rewind(self, step: int) -> Run:
        self.env.rewind(self, step)
        return self

    def export(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Its export document (as ``zenaton export`` writes it); also written to ``path``."""
        from zenaton import __version__

        instance = self.instance
        document = export_document(
            instance,
            self.journal,
            self.env.store.archive(self.id),
            exported_at=self.env.clock.now(),
            zenaton=__version__,
        )
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
        return document

    # -- assertions ----------------------------------------------------------------------------
    def assert_steps(self, *names: str) -> None:
        """The names of its steps, in order, are ``names``; else an AssertionError showing both
        and the whole timeline."""
        actual = [s.name for s in self.steps]
        if actual != list(names):
            raise AssertionError(
                self.describe(f"has other steps than expected\n  expected: {list(names)}\n  actual:   {actual}")
            )

    def describe(self, what: str = "") -> str:
        """The run on a few lines: name, id, status, error, and its timeline."""
        instance = self.instance
        head = f"{instance.name} {instance.id[:8]}"
        if instance.custom_id is not None:
            head += f" (id {instance.custom_id!r})"
        lines = [f"{head} {what or 'is ' + instance.status.value}"]
        error = self.error
        if error:
            lines.append(f"  error: {error.get('class')}: {error.get('message')}")
        timeline = self.timeline
        lines.append("timeline:" if timeline else "timeline: (empty)")
        lines += ["  " + step.line() for step in timeline]
        return "\n".join(lines)

    def __repr__(self) -> str:
        instance = self.env.store.get_instance(self.id)
        if instance is None:
            return f"<Run {self.id[:8]}>"
        return f"<Run {instance.name} {self.id[:8]} {instance.status.value}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id and other.env is self.env

    def __hash__(self) -> int:
        return hash(self.id)

    # -- internals -----------------------------------------------------------------------------
    def _timeline(self) -> list[Step]:
        instance = self.instance
        journal = self.journal
        task = instance.data if instance.kind is Kind.TASK else None
        views = steps(journal, shown(instance.data), task)
        results, properties = _position_texts(journal, instance.data)
        codec = self.env.project.codec
        timeline = []
        for view in views:
            position = view["position"]
            if view["kind"] not in MARKER_KINDS and position is not None and position in properties:
                result = results.get(position) if view["kind"] in RESULT_KINDS else _NO_TEXT
                timeline.append(Step(view, codec, result, properties[position]))
            else:
                timeline.append(Step(view, codec, _NO_TEXT, _NO_TEXT))
        return timeline

    def _waiting_for(self) -> Iterator[str]:
        for step in self.steps:
            if step.kind == "wait" and step.status == "waiting":
                fire_at = step.view.get("fire_at")
                yield f"event {step.name} (no time limit)" if fire_at is None else f"a wait until {fire_at}"
            elif step.status in ("running", "retrying"):
                yield f"{step.kind} {step.name} (position {step.position}, {step.status})"


def _position_texts(journal: list[JournalEntry], initial: str) -> tuple[dict[int, str | None], dict[int, str]]:
    """Per position: the encoded result (a task's or child's result, a wait's event; None: a wait
    that timed out) and the encoded properties at its latest entry, as inspect assigns them."""
    current = initial
    results: dict[int, str | None] = {}
    properties: dict[int, str] = {}
    waiting: dict[int, str | None] = {}  # wait position -> event name, oldest first
    for entry in journal:
        if entry.properties is not None:
            current = entry.properties
        position = entry.position
        if position is not None and entry.type not in _NOT_A_STEP:
            properties[position] = current
            if entry.type is Entry.WAIT_STARTED:
                waiting[position] = entry.name
            elif entry.type is Entry.TIMER_FIRED and position in waiting:
                del waiting[position]
                results[position] = None
            elif entry.type in (Entry.TASK_COMPLETED, Entry.CHILD_COMPLETED):
                results[position] = json.dumps(json.loads(entry.data or "{}").get("result"))
        elif entry.type is Entry.EVENT_RECEIVED:
            for wait, name in waiting.items():
                if name == entry.name:
                    del waiting[wait]
                    properties[wait], results[wait] = current, entry.data
                    break
    return results, properties


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"

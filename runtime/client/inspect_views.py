"""An instance and its journal as data for people and scripts (inspect, --json).

Reads only records; decodes nothing of the project (``display`` never imports).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from zenaton_runtime.models import ArchivedRun, Entry, Instance, JournalEntry, Kind
from zenaton_runtime.project.serializer import display, display_parsed

STEP_ENTRIES = {
    Entry.TASK_SCHEDULED: "task",
    Entry.WAIT_STARTED: "wait",
    Entry.DISPATCHED: "dispatch",
}
# A workflow's calls to other instances: one entry each, the request and its answer.
CALL_STEPS = {
    Entry.EVENT_SENT: "send_event",
    Entry.CONTROL_SENT: "control",
    Entry.FOUND: "find",
    Entry.SCHEDULE_ADDED: "schedule",
}
MARKERS = {
    Entry.EVENT_RECEIVED: "event",
    Entry.PAUSED: "pause",
    Entry.RESUMED: "resume",
    Entry.RETRIED: "retry",
    Entry.KILLED: "kill",
    Entry.ERROR: "error",
    Entry.COMPLETED: "completed",
    Entry.REWOUND: "rewind",
}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def shown(text: str | None) -> Any:
    return None if text is None else display(text)


def instance_summary(instance: Instance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "kind": instance.kind.value,
        "name": instance.name,
        "version": instance.version,
        "custom_id": instance.custom_id,
        "env": instance.env,
        "status": instance.status.value,
        "parent_id": instance.parent_id,
        "created_at": iso(instance.created_at),
        "updated_at": iso(instance.updated_at),
    }


def instance_view(
    instance: Instance, journal: list[JournalEntry], archive: list[ArchivedRun] | None = None, all_runs: bool = False
) -> dict[str, Any]:
    """The instance and its current run's steps; given the ``archive``, the current ``run`` number,
    and with ``all_runs`` also ``runs``: every run, oldest first."""
    view = instance_summary(instance)
    error = json.loads(instance.error) if instance.error else None
    view["error"] = _public_error(error)
    view["properties"] = shown(instance.properties or instance.data)
    task = instance.data if instance.kind is Kind.TASK else None  # a standalone task: its own properties
    view["steps"] = steps(journal, shown(instance.data), task)
    if archive is not None:
        view["run"] = archive[-1].run + 1 if archive else 1
    if all_runs:
        view["runs"] = runs(journal, archive or [], shown(instance.data), task)
    return view


def runs(
    journal: list[JournalEntry], archive: list[ArchivedRun], initial: Any, task: str | None = None
) -> list[dict[str, Any]]:
    """Each run with the whole journal it had: the entries a later run kept, then its archived tail."""
    current = archive[-1].run + 1 if archive else 1
    items: list[dict[str, Any]] = [
        {
            "run": current,
            "current": True,
            "rewound_to": None,
            "archived_at": None,
            "archived_from_seq": None,
            "steps": steps(journal, initial, task),
        }
    ]
    entries = journal
    for archived in reversed(archive):
        cut = archived.entries[0].seq
        entries = [e for e in entries if e.seq < cut] + list(archived.entries)
        items.append(
            {
                "run": archived.run,
                "current": False,
                "rewound_to": archived.entries[0].position,  # a rewind cuts at the first entry of a step
                "archived_at": iso(archived.archived_at),
                "archived_from_seq": cut,
                "steps": steps(entries, initial, task),
            }
        )
    return items[::-1]


def _public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    public = {"class": error.get("class"), "message": error.get("message"), "traceback": error.get("traceback")}
    for key in ("position", "task", "child_id", "recorded", "requested", "stdout", "stderr"):
        if key in error:
            public[key] = error[key]
    return public


def steps(journal: list[JournalEntry], initial: Any, task: str | None = None) -> list[dict[str, Any]]:
    """One item per position (task, wait, dispatch, a call) or marker (event, pause, ...), in journal order;
    ``task``: a standalone task's encoded object (its instance data), whose attempts are its step."""
    items: list[dict[str, Any]] = []
    by_position: dict[int, dict[str, Any]] = {}
    properties = initial
    standalone = _task_properties(display(task)) if task is not None else None
    for entry in journal:
        if entry.properties is not None:
            properties = display(entry.properties)
        step = _step_for(entry, items, by_position, standalone)
        if step is not None:
            step["properties"] = properties
            step["_seq"] = entry.seq
    previous = initial
    for step in items:
        step["changed"] = _changes(previous, step["properties"])
        previous = step["properties"]
        step.pop("_seq", None)
    return items


def _step_for(
    entry: JournalEntry, items: list[dict[str, Any]], by_position: dict[int, dict[str, Any]], standalone: Any = None
) -> dict[str, Any] | None:
    data = json.loads(entry.data) if entry.data and entry.type is not Entry.EVENT_RECEIVED else None
    if entry.type in CALL_STEPS and entry.position is not None:
        step = _new_step(entry, CALL_STEPS[entry.type])
        _call_step(step, entry, data if isinstance(data, dict) else {})
        by_position[entry.position] = step
        items.append(step)
        return step
    if entry.type in STEP_ENTRIES and entry.position is not None:
        kind = STEP_ENTRIES[entry.type]
        if kind == "task" and data and data.get("group") is not None:
            kind = "parallel"
        if kind == "dispatch" and data and data.get("wait"):
            kind = "workflow"
        step = _new_step(entry, kind)
        if kind == "task" or kind == "parallel":
            sent = data.get("task") if data else None  # absent from journals written before it was kept
            _task_step(step, None if sent is None else _task_properties(display_parsed(sent)))
        step["status"] = "completed" if kind == "dispatch" else "running"
        if kind == "dispatch":
            step["finished_at"] = iso(entry.created_at)
            step["result"] = {"id": data["id"]} if data else None
        if kind == "wait":
            step["fire_at"] = iso(data.get("fire_at")) if data else None
            step["status"] = "waiting"
        by_position[entry.position] = step
        items.append(step)
        return step
    if entry.type in (Entry.TASK_COMPLETED, Entry.TASK_FAILED, Entry.CHILD_COMPLETED, Entry.TIMER_FIRED):
        found = by_position.get(entry.position) if entry.position is not None else None
        if found is None:  # a standalone task's own attempts (position 0)
            found = _new_step(entry, "task")
            _task_step(found, standalone)
            by_position[entry.position or 0] = found
            items.append(found)
        _finish_step(found, entry, data)
        return found
    if entry.type is Entry.EVENT_RECEIVED:
        step = _new_step(entry, "event")
        step.update(status="received", finished_at=iso(entry.created_at), result=shown(entry.data))
        _resolve_wait(by_position, entry)
        items.append(step)
        return step
    if entry.type in MARKERS:
        step = _new_step(entry, MARKERS[entry.type])
        step.update(status="done", finished_at=iso(entry.created_at))
        if entry.type is Entry.ERROR and data:
            step["error"] = _public_error(data)
            step["status"] = "failed"
            child = by_position.get(entry.position) if entry.position is not None else None
            if data.get("class") == "ChildWorkflowKilled" and child is not None and child["status"] == "running":
                child["status"] = "killed"  # the child step it waited on ends there
        if entry.type is Entry.COMPLETED and data:
            step["result"] = data.get("result") and display_parsed(data["result"])
        if entry.type is Entry.REWOUND and data:
            step["result"] = data
        items.append(step)
        return step
    if entry.type is Entry.REWIND_REFUSED:  # a rewind the daemon refused: {"request", "to_step", "reason"}
        step = _new_step(entry, "rewind")
        step.update(status="refused", finished_at=iso(entry.created_at), result=data)
        items.append(step)
        return step
    return None


def _new_step(entry: JournalEntry, kind: str) -> dict[str, Any]:
    return {
        "position": entry.position,
        "kind": kind,
        "name": entry.name,
        "status": "running",
        "attempts": 0,
        "started_at": iso(entry.created_at),
        "finished_at": None,
        "duration": None,
        "result": None,
        "error": None,
        "output": [],
        "task_properties": None,  # task steps only (see _task_step)
        "task_properties_changed": None,
        "attempt_times": None,
        "target": None,  # a call to another instance: the instance where_id() named
    }


def _call_step(step: dict[str, Any], entry: JournalEntry, data: dict[str, Any]) -> None:
    """A call's step: done when it was decided; its target, and its answer or refusal."""
    refused = data.get("refused")
    step.update(status="refused" if refused else "completed", finished_at=iso(entry.created_at))
    if isinstance(refused, dict):
        step["error"] = {"class": refused.get("class"), "message": refused.get("message")}
    if entry.type is Entry.SCHEDULE_ADDED:
        schedule = data.get("schedule")
        if isinstance(schedule, dict):
            step["result"] = {
                "id": schedule.get("id"),
                "cron": schedule.get("cron"),
                "timezone": schedule.get("timezone"),
                "next_fire": _iso_of(schedule.get("next_fire")),
            }
        return
    step["target"] = {"name": entry.name, "custom_id": data.get("custom_id"), "id": data.get("id")}
    if entry.type is Entry.EVENT_SENT:
        step["result"] = {"event": data.get("event")}  # refused or not: what it asked
    elif entry.type is Entry.CONTROL_SENT:
        step["result"] = {"action": data.get("action")}
    elif data.get("id") is not None:  # find: what it found then; null when nothing had the id
        properties = data.get("properties")
        shown_properties = None if properties is None else display_parsed(properties)
        step["result"] = {"status": data.get("status"), "properties": _task_properties(shown_properties)}


def _task_step(step: dict[str, Any], properties: Any) -> None:
    """A task step's own fields: the task's properties as sent, what the last attempt's handle()
    changed in them, and each attempt's times."""
    step.update(task_properties=properties, task_properties_changed={}, attempt_times=[])


def _task_properties(shown: Any) -> Any:
    """A displayed task object as its properties: its attributes, without the class marker."""
    if isinstance(shown, dict):
        return {k: v for k, v in shown.items() if k != "__class__"}
    return shown


def _finish_step(step: dict[str, Any], entry: JournalEntry, data: dict[str, Any] | None) -> None:
    data = data or {}
    if entry.type in (Entry.TASK_COMPLETED, Entry.TASK_FAILED):
        step["attempts"] += 1
        step["output"].append(
            {"attempt": step["attempts"], "stdout": data.get("stdout", ""), "stderr": data.get("stderr", "")}
        )
        _attempt(step, entry, data)
    if entry.type is Entry.TASK_FAILED:
        step["error"] = data.get("error")
        step["status"] = "retrying" if data.get("retry_in") else "failed"
        if not data.get("retry_in"):
            _close(step, entry)
        return
    if entry.type is Entry.TIMER_FIRED:
        if step["status"] == "waiting":
            step["status"] = "timed out"
            _close(step, entry)
        return
    step["status"] = "completed"
    step["error"] = None
    step["result"] = display_parsed(data.get("result"))
    _close(step, entry)


def _attempt(step: dict[str, Any], entry: JournalEntry, data: dict[str, Any]) -> None:
    """An attempt's times and outcome, and what its handle() changed in the task's properties."""
    if step["attempt_times"] is None:  # an attempt at a position that holds no task: a damaged journal
        _task_step(step, None)
    failed = "retrying" if data.get("retry_in") else "failed"  # as the step's status reads it
    outcome = "completed" if entry.type is Entry.TASK_COMPLETED else failed
    step["attempt_times"].append(
        {
            "attempt": step["attempts"],
            "started_at": _iso_of(data.get("started_at")),
            "finished_at": _iso_of(data.get("finished_at")),
            "outcome": outcome,
        }
    )
    after = data.get("task")  # only there when handle() changed the task
    changed: dict[str, Any] = {}
    if after is not None:
        sent = step["task_properties"]
        changed = _changes(sent if isinstance(sent, dict) else {}, _task_properties(display_parsed(after)))
    step["task_properties_changed"] = changed


def _iso_of(value: Any) -> str | None:
    """A journaled time as ISO text; None when absent (older journals) or not a time."""
    if type(value) is not float and type(value) is not int:
        return None
    try:
        return iso(value)
    except (OverflowError, OSError, ValueError):
        return None


def _resolve_wait(by_position: dict[int, dict[str, Any]], entry: JournalEntry) -> None:
    for step in by_position.values():
        if step["kind"] == "wait" and step["status"] == "waiting" and step["name"] == entry.name:
            step["status"] = "completed"
            step["result"] = shown(entry.data)
            _close(step, entry)
            return


def _close(step: dict[str, Any], entry: JournalEntry) -> None:
    step["finished_at"] = iso(entry.created_at)
    started = _dt.datetime.fromisoformat(step["started_at"].replace("Z", "+00:00"))
    step["duration"] = round(entry.created_at - started.timestamp(), 6)


def _changes(before: Any, after: Any) -> dict[str, Any]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return {} if before == after else {"value": {"from": before, "to": after}}
    changed: dict[str, Any] = {}
    for key in sorted(set(before) | set(after), key=str):
        if key == "__class__":
            continue
        if before.get(key) != after.get(key):
            changed[key] = {"from": before.get(key), "to": after.get(key)}
    return changed


def error_groups(instances: list[Instance]) -> list[dict[str, Any]]:
    """Instances stopped by an error, grouped by error class and task, newest group first."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for instance in instances:
        error = json.loads(instance.error) if instance.error else {}
        task = error.get("task") or instance.name
        key = (str(error.get("class")), task)
        group = groups.setdefault(
            key, {"class": key[0], "task": task, "count": 0, "latest": None, "message": error.get("message"), "ids": []}
        )
        group["count"] += 1
        group["ids"].append(instance.id)
        if group["latest"] is None or instance.updated_at > group["_latest"]:
            group["_latest"] = instance.updated_at
            group["latest"] = iso(instance.updated_at)
            group["message"] = error.get("message")
    ordered = sorted(groups.values(), key=lambda g: g["_latest"], reverse=True)
    for group in ordered:
        del group["_latest"]
    return ordered

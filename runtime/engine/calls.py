"""A workflow's calls to other instances, decided once, in the step that asks for them.

``where_id(x).send_event(e)``, ``.pause()``, ``.resume()``, ``.kill()``, ``.find()`` and
``job.schedule(cron)`` inside ``handle()`` are requests, as ``dispatch()`` is: each has a
position. When the run asks, the engine resolves the target once (the instance ``where_id(x)``
names, by the client's rule, in the workflow's env), decides against what the step can read,
and writes one journal entry holding the request and its answer. What it does is an op of the
step's batch, committed with that entry or not at all: an inbox item posted to the target
(``Post``) or a schedule added (``AddSchedule``). A refusal (no such unfinished instance, a
status that does not allow the action, a bad cron) is journaled instead, and handle() gets
the error a client would get. handle() waits at the call until the entry is written, then gets
the answer decoded from it; replay delivers that same entry again and decides nothing.

What a call reads: the store, with the commit in flight landed first (``see_commit_in_flight``),
under what this step decided and the store does not hold yet: the instances its decisions
created (``StepContext.created``), the statuses and properties its finished activations left
(``StepContext.decided``), and the calling instance as its own activation holds it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import zenaton.exceptions as sdk_errors
from zenaton_runtime.engine.journaling import StepJournal
from zenaton_runtime.instances import named_by_custom_id, no_instance, status_refusal
from zenaton_runtime.models import CONTROLLABLE, Entry, InboxKind, Instance, Kind
from zenaton_runtime.replay import Decision, DecisionKind
from zenaton_runtime.replay.calls import refusal, schedule_fields
from zenaton_runtime.timing.schedules import new_schedule

ACTIONS = {DecisionKind.PAUSE: "pause", DecisionKind.RESUME: "resume", DecisionKind.KILL: "kill"}
INBOX = {"pause": InboxKind.PAUSE, "resume": InboxKind.RESUME, "kill": InboxKind.KILL}

# A call's handler fills the entry's fields, adds its ops last (once nothing can refuse it) and
# returns encoded text to embed as "properties" (find), or None.
Handler = Callable[[StepJournal, Decision, dict[str, Any]], "str | None"]


def decide(j: StepJournal, d: Decision) -> tuple[Entry, str]:
    """Carry the call out as ops of the step's batch, or refuse it; the entry type and data that
    record it with its answer. An error other than the SDK's (user code: a job's ``id()``)
    propagates: the instance is paused with it, and nothing is journaled for the call."""
    entry, handler = _CALLS[d.kind]
    fields: dict[str, Any] = {}
    embedded: str | None = None
    try:
        embedded = handler(j, d, fields)
        fields["refused"] = None
    except sdk_errors.Error as error:  # what a client would get: raised inside handle()
        fields["refused"] = refusal(error)
    text = json.dumps(fields)
    if embedded is not None:  # the encoded properties as they are, never encoded twice
        text = f'{text[:-1]}, "properties": {embedded}}}'
    j.log(_summary(d, fields), event=entry.value, position=d.position, level="warning" if fields["refused"] else "info")
    return entry, text


def _send_event(j: StepJournal, d: Decision, fields: dict[str, Any]) -> None:
    fields.update(custom_id=d.custom_id, id=None, event=d.event)
    target = _target(j, d, unfinished_only=True)
    if target is None:
        raise no_instance(str(d.name), d.custom_id, j.instance.env)
    fields["id"] = target.id
    name = str(d.event)
    payload = j.ctx.codec.encode(d.job, name)
    j.batch.post(target.id, InboxKind.EVENT, name, payload)
    return None


def _control(j: StepJournal, d: Decision, fields: dict[str, Any]) -> None:
    action = ACTIONS[d.kind]
    fields.update(action=action, custom_id=d.custom_id, id=None)
    target = _target(j, d, unfinished_only=True)
    if target is None:
        raise no_instance(str(d.name), d.custom_id, j.instance.env)
    fields["id"] = target.id
    refused = status_refusal(action, target, CONTROLLABLE[action])
    if refused:
        raise sdk_errors.InstanceStateError(refused)
    j.batch.post(target.id, INBOX[action])
    return None


def _find(j: StepJournal, d: Decision, fields: dict[str, Any]) -> str | None:
    fields.update(custom_id=d.custom_id, id=None, status=None, version=None)
    target = _target(j, d, unfinished_only=False)
    if target is None:
        return None
    fields.update(id=target.id, status=target.status.value, version=target.version)
    return target.properties or target.data  # the workflow as dispatched, before its first step


def _schedule(j: StepJournal, d: Decision, fields: dict[str, Any]) -> None:
    fields["schedule"] = None
    schedule = new_schedule(j.ctx.codec, d.job, d.cron, env=j.instance.env, timezone=j.ctx.timezone, now=j.now)  # type: ignore[arg-type]
    fields["schedule"] = schedule_fields(schedule)
    j.batch.add_schedule(schedule)
    return None


def _target(j: StepJournal, d: Decision, *, unfinished_only: bool) -> Instance | None:
    """The instance ``where_id()`` names, as this step leaves things (see the module's docstring)."""
    ctx = j.ctx
    ctx.see_commit_in_flight()  # a target the commit in flight finishes reads finished
    env, name, custom_id = j.instance.env, d.name, d.custom_id
    stored = ctx.reads.list_instances(env=env, name=name, custom_id=custom_id, kind="workflow")
    created = [
        i
        for i in reversed(ctx.created)  # newest first, as the store lists them
        if i.kind is Kind.WORKFLOW and i.env == env and i.name == name and custom_id in (None, i.custom_id)
    ]
    return named_by_custom_id((_as_decided(j, i) for i in created + stored), unfinished_only=unfinished_only)


def _as_decided(j: StepJournal, instance: Instance) -> Instance:
    if instance.id == j.id:  # itself: as its activation holds it (a resume made it running)
        return dataclasses.replace(instance, status=j.status, properties=j.properties)
    decided = j.ctx.decided.get(instance.id)
    if decided is None:
        return instance
    return dataclasses.replace(instance, status=decided[0], properties=decided[1])


def _summary(d: Decision, fields: dict[str, Any]) -> str:
    """The log line of a call."""
    target = f"{d.name} {d.custom_id!r}" + (f" ({fields['id'][:8]})" if fields.get("id") else "")
    what = {
        DecisionKind.SEND_EVENT: f"event {d.event} to {target}",
        DecisionKind.FIND: f"find {target}",
        DecisionKind.SCHEDULE: f"schedule of {d.name} ({d.cron!r})",
    }.get(d.kind, f"{ACTIONS.get(d.kind)} of {target}")
    refused = fields.get("refused")
    if refused:
        return f"{what} refused (position {d.position}): {refused['class']}: {refused['message']}"
    if d.kind is DecisionKind.FIND:
        return f"{what}: {'found' if fields.get('id') else 'none'} (position {d.position})"
    return f"{what} (position {d.position})"


_CALLS: dict[DecisionKind, tuple[Entry, Handler]] = {
    DecisionKind.SEND_EVENT: (Entry.EVENT_SENT, _send_event),
    DecisionKind.PAUSE: (Entry.CONTROL_SENT, _control),
    DecisionKind.RESUME: (Entry.CONTROL_SENT, _control),
    DecisionKind.KILL: (Entry.CONTROL_SENT, _control),
    DecisionKind.FIND: (Entry.FOUND, _find),
    DecisionKind.SCHEDULE: (Entry.SCHEDULE_ADDED, _schedule),
}

"""Reading a journal back: the requests it decided and the inputs it delivered."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from zenaton_runtime.models import Entry, JournalEntry, TextEnum
from zenaton_runtime.replay.requests import CHILD, CONTROLS, DISPATCH, FIND, SCHEDULE, SEND_EVENT, TASK, WAIT, Recorded

# A call to another instance: its request and its answer in one entry (the answer is its data).
CALL_ENTRIES = {Entry.EVENT_SENT: SEND_EVENT, Entry.FOUND: FIND, Entry.SCHEDULE_ADDED: SCHEDULE}


class InputKind(TextEnum):
    RESULT = "result"  # a task's or child's result, or a call's answer, at its position
    TIMER = "timer"  # a wait's time ran out, at its position
    EVENT = "event"  # an event received (no position)


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Input:
    """Something delivered to a run: a result, a timer fire or an event (encoded)."""

    kind: InputKind
    position: int | None
    value: str | None  # the encoded result or event (codec text); None for a timer


def recorded_requests(entries: Iterable[JournalEntry]) -> dict[int, Recorded]:
    recorded: dict[int, Recorded] = {}
    for entry in entries:
        if entry.position is None:
            continue
        if entry.type is Entry.TASK_SCHEDULED:
            recorded[entry.position] = Recorded(entry.position, TASK, entry.name)
        elif entry.type is Entry.WAIT_STARTED:
            data = json.loads(entry.data or "{}")
            recorded[entry.position] = Recorded(entry.position, WAIT, entry.name, data.get("fire_at"))
        elif entry.type is Entry.DISPATCHED:
            data = json.loads(entry.data or "{}")
            recorded[entry.position] = Recorded(entry.position, CHILD if data.get("wait") else DISPATCH, entry.name)
        elif entry.type in CALL_ENTRIES:
            recorded[entry.position] = Recorded(entry.position, CALL_ENTRIES[entry.type], entry.name)
        elif entry.type is Entry.CONTROL_SENT:
            action = json.loads(entry.data or "{}").get("action")
            recorded[entry.position] = Recorded(entry.position, CONTROLS[action], entry.name)
    return recorded


def inputs(entries: Iterable[JournalEntry]) -> Iterator[Input]:
    for entry in entries:
        if entry.type in (Entry.TASK_COMPLETED, Entry.CHILD_COMPLETED):
            yield Input(InputKind.RESULT, entry.position, json.dumps(json.loads(entry.data or "{}").get("result")))
        elif entry.type is Entry.TIMER_FIRED:
            yield Input(InputKind.TIMER, entry.position, None)
        elif entry.type is Entry.EVENT_RECEIVED:
            yield Input(InputKind.EVENT, None, entry.data)
        elif entry.type in CALL_ENTRIES or entry.type is Entry.CONTROL_SENT:
            yield Input(InputKind.RESULT, entry.position, entry.data)  # the call's answer, decoded as a result

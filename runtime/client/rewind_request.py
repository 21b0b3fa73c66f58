"""A client's rewind: check and plan it, post it, and read the daemon's answer.

The client plans against the journal it reads (``prepare``, which changes nothing: a dry run
stops there) and posts a "rewind" inbox item (``request_rewind``). The daemon plans again
against the journal it holds when it takes the item (``engine/rewind_step.py``) and answers in
the instance's journal, in the batch that consumes the item:

- applied: a ``rewound`` entry, data ``{"to_step", "run", "archived", "request"}``;
- refused: a ``rewind_refused`` entry, data ``{"request", "to_step", "reason"}``, no position.

``request`` is the inbox item's id, so each answer names the request it answers. A journal written
before requests were named (``rewound`` without ``request``; refusals only in the daemon's log)
is read by its ``rewound`` entry alone: applied when one starts the run after the planned one,
refused when none does.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zenaton_runtime.engine.rewind_plan import RewindPlan, custom_id_holder, duplicate, next_run, plan_rewind, refusal
from zenaton_runtime.errors import StateError
from zenaton_runtime.models import Entry, InboxKind, Instance, JournalEntry
from zenaton_runtime.store import Store


class RewindState(str, enum.Enum):
    PENDING = "pending"  # the daemon has not taken the request yet
    APPLIED = "applied"
    REFUSED = "refused"


@dataclass(frozen=True)
class RewindRequest:
    plan: RewindPlan  # the client's plan; the daemon plans again when it takes the request
    item_id: int | None  # the posted inbox item; None for a dry run, which posts nothing

    @property
    def instance_id(self) -> str:
        return self.plan.instance_id


@dataclass(frozen=True)
class RewindOutcome:
    state: RewindState
    to_step: int | None = None  # where the daemon rewound to (applied)
    run: int | None = None  # the run the rewind started (applied)
    reason: str | None = None  # why the daemon refused, when it says

    @property
    def applied(self) -> bool:
        return self.state is RewindState.APPLIED

    @property
    def refused(self) -> bool:
        return self.state is RewindState.REFUSED


def prepare(store: Store, instance: Instance, position: int) -> RewindPlan:
    """Check that the instance can be rewound to ``position`` and plan it (changes nothing)."""
    reason = refusal(instance, instance.status)
    if reason:
        raise StateError(reason)
    if instance.status.finished:
        holder = custom_id_holder(store, instance)
        if holder is not None:
            raise duplicate(instance, holder.id)
    journal = store.journal(instance.id)
    return plan_rewind(journal, position, instance_id=instance.id, run=next_run(store, instance.id))


def request_rewind(store: Store, instance: Instance, position: int) -> tuple[RewindPlan, int]:
    """Post the rewind for the daemon; returns the plan and the inbox item id."""
    plan = prepare(store, instance, position)
    data = {"position": plan.position, "requested": position, "seq": plan.keep_through_seq}
    return plan, store.post(instance.id, InboxKind.REWIND, None, json.dumps(data))


def answer(entries: Iterable[JournalEntry], request: RewindRequest) -> RewindOutcome:
    """The daemon's answer to a request it has taken, from the instance's entries (its journal
    and archived runs: a later rewind may have archived the answer)."""
    unnamed: RewindOutcome | None = None
    for entry in entries:
        kind = entry.type
        if kind is not Entry.REWOUND and kind is not Entry.REWIND_REFUSED:
            continue
        data = _data(entry)
        if "request" in data:
            if data["request"] != request.item_id:
                continue
            if kind is Entry.REWIND_REFUSED:
                return RewindOutcome(RewindState.REFUSED, reason=str(data.get("reason") or "") or None)
            return _applied(data)
        if kind is Entry.REWOUND and data.get("run") == request.plan.run + 1:
            unnamed = _applied(data)  # a daemon that does not name requests: the run it started
    return unnamed or RewindOutcome(RewindState.REFUSED)


def _applied(data: dict[str, Any]) -> RewindOutcome:
    to_step, run = data.get("to_step"), data.get("run")
    return RewindOutcome(
        RewindState.APPLIED, to_step if isinstance(to_step, int) else None, run if isinstance(run, int) else None
    )


def _data(entry: JournalEntry) -> dict[str, Any]:
    try:
        data = json.loads(entry.data or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

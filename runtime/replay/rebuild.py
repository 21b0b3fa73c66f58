"""Rebuilding a run from its journal: handle() started, then every journaled input delivered
again, in journal order. The engine rebuilds a run this way (an evicted run, a restart, a
resume, a reload), and so does ``zenaton check``: one routine, so that what the check says of an
instance is what the daemon would do with it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from zenaton_runtime.models import JournalEntry
from zenaton_runtime.replay.journal import Input, InputKind, inputs
from zenaton_runtime.replay.requests import Decision, DecisionKind
from zenaton_runtime.replay.run import WorkflowRun

Decode = Callable[[str], Any]  # the project's codec: encoded text -> value


def deliver(run: WorkflowRun, item: Input, now: float, decode: Decode) -> list[Decision]:
    """One journaled input to the run; raises what ``decode`` raises (a payload the current
    code cannot read). A journaled input missing its position or value fails where it is read."""
    if item.kind is InputKind.TIMER:
        return run.deliver_timer(cast(int, item.position), now)
    if item.kind is InputKind.EVENT:
        return run.deliver_event(decode(cast(str, item.value)), now)
    return run.deliver_result(cast(int, item.position), decode(cast(str, item.value)), now)


def replay_journal(run: WorkflowRun, journal: Iterable[JournalEntry], now: float, decode: Decode) -> list[Decision]:
    """Start ``run`` and deliver every input of ``journal`` to it, stopping at the first failure
    (a ``fail`` decision: the code raised, or asked for something other than the journal holds).
    Returns what the run decided beyond the journal. Raises what ``decode`` raises; the caller
    closes the run then."""
    decisions = run.start(now)
    for item in inputs(journal):
        if any(d.kind is DecisionKind.FAIL for d in decisions):
            break
        decisions += deliver(run, item, now, decode)
    return decisions

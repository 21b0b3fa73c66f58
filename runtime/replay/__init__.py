"""The decision core: run a workflow's handle() against its journal, no I/O.

``WorkflowRun`` keeps handle() suspended in a greenlet at its pending request;
inputs (task results, timer fires, events) are delivered in journal order and
each returns the new decisions. Rebuilding a run after eviction is the same
thing: deliver every recorded input again; requests already in the journal are
checked (class by position) instead of decided again.

Modules: ``run`` (the greenlet), ``requests`` (requests, decisions, non-determinism),
``journal`` (reading a journal back), ``rebuild`` (a run rebuilt from its journal: the engine's
and ``zenaton check``'s one way), ``deadline`` (the decision time limit). May import
``zenaton``, ``errors`` and ``models`` only: no store, no clock, no project loading.
"""

from zenaton_runtime.replay.requests import Decision, DecisionKind, NonDeterminismError, Recorded
from zenaton_runtime.replay.run import WorkflowRun

__all__ = ["Decision", "DecisionKind", "NonDeterminismError", "Recorded", "WorkflowRun"]

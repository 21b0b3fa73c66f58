"""Test your workflows: the real engine, in-process, with a fake clock and no daemon.

    from zenaton.testing import WorkflowEnvironment

    def test_welcome_flow(zenaton_env):                  # the pytest fixture (a WorkflowEnvironment)
        zenaton_env.mock_task(SendWelcomeEmail, returns={"status": "sent"})
        run = zenaton_env.dispatch(WelcomeFlow(user))
        run.until_waiting()                              # everything that can run now
        zenaton_env.advance(days=1)                      # the fake clock: the wait times out
        assert run.status == "completed"

and ``replay(FILE_OR_DICT, WorkflowClass)``: a journal ``zenaton export`` wrote, replayed
against the current code; it raises ``NonDeterminismError`` where they part.

The names below are imported from the engine (``zenaton_runtime.testing``) when first used,
not when this module is: importing the SDK, this module included, never imports the engine.
See docs/testing.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zenaton_runtime.check.document import DocumentError
    from zenaton_runtime.replay.requests import NonDeterminismError
    from zenaton_runtime.testing.environment import WorkflowEnvironment
    from zenaton_runtime.testing.journals import Replayed, replay
    from zenaton_runtime.testing.mocks import TaskMock
    from zenaton_runtime.testing.runs import Run, Step

__all__ = [
    "DocumentError",
    "NonDeterminismError",
    "Replayed",
    "Run",
    "Step",
    "TaskMock",
    "WorkflowEnvironment",
    "replay",
]

_HOMES = {
    "WorkflowEnvironment": "zenaton_runtime.testing.environment",
    "Run": "zenaton_runtime.testing.runs",
    "Step": "zenaton_runtime.testing.runs",
    "TaskMock": "zenaton_runtime.testing.mocks",
    "replay": "zenaton_runtime.testing.journals",
    "Replayed": "zenaton_runtime.testing.journals",
    "NonDeterminismError": "zenaton_runtime.replay.requests",
    "DocumentError": "zenaton_runtime.check.document",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'zenaton.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups find it here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""The small protocol between the SDK and whatever engine runs it.

The daemon installs a replaying runtime while a workflow decides and a task
runtime while a task runs. A plain script has none installed; it then gets the
default client runtime from the engine, looked up lazily so that importing the
SDK never imports the engine.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .abstracts.event import Event
    from .abstracts.job import Job
    from .abstracts.workflow import Workflow


class Runtime(Protocol):
    """What the SDK asks of an engine."""

    def execute(self, jobs: Sequence[Job]) -> list[Any]:
        """Run jobs and return their results, in order."""

    def dispatch(self, jobs: Sequence[Job]) -> None:
        """Start jobs without waiting for them."""

    def dispatch_many(self, jobs: Sequence[Job]) -> list[str | None]:
        """Start many jobs in one write; their instance ids (None where the custom id was taken)."""

    def wait(self, wait: Any) -> Any:
        """Block on a Wait task; return the event received, or None on timeout."""

    def find(self, workflow_class: type, custom_id: Any) -> Workflow | None:
        """The current state of the workflow instance with this id."""

    def send_event(self, workflow_class: type, custom_id: Any, event: Event) -> None:
        """Deliver an event to the workflow instance with this id."""

    def control(self, workflow_class: type, custom_id: Any, action: str) -> None:
        """Pause, resume or kill the workflow instance with this id."""

    def schedule(self, job: Job, cron: str) -> Any:
        """Dispatch the job at every fire time of the cron expression."""


current_runtime: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar("zenaton_runtime", default=None)


def get_runtime() -> Runtime:
    """The runtime installed for this context, or the default client runtime."""
    runtime = current_runtime.get()
    if runtime is not None:
        return runtime
    from zenaton_runtime.client.control import default_runtime  # lazy: the SDK's one reach into the engine

    return default_runtime()


def dashboard_url() -> str:
    """The local dashboard's address, without a slash at the end: ZENATON_DASHBOARD_URL (a tunnel,
    a proxy), or what the project's zenaton.toml says ([dashboard] host and port)."""
    given = os.environ.get("ZENATON_DASHBOARD_URL", "").strip()
    if given:
        return given.rstrip("/")
    from zenaton_runtime.client.control import project_dashboard_url  # lazy, as get_runtime's

    return project_dashboard_url()

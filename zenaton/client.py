"""Client(app_id, api_token, app_env): the project's credentials and environment."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from ._jobs import check_jobs
from ._runtime import dashboard_url, get_runtime
from .abstracts.task import Task
from .abstracts.workflow import Workflow
from .exceptions import InvalidArgumentError


class Client:
    """Configure once with ``Client(app_id, api_token, app_env)``; ``Client()`` returns it.

    Locally the app id names the project and ``app_env`` chooses the environment
    instances are dispatched to; the token is kept but not needed.
    """

    _current: ClassVar[Client | None] = None
    app_id: Any
    api_token: Any
    app_env: Any

    def __new__(cls, app_id: Any = None, api_token: Any = None, app_env: Any = None) -> Client:
        if app_id is None and api_token is None and app_env is None and cls._current is not None:
            return cls._current
        instance = super().__new__(cls)
        instance.app_id, instance.api_token, instance.app_env = app_id, api_token, app_env
        cls._current = instance
        return instance

    def __init__(self, app_id: Any = None, api_token: Any = None, app_env: Any = None) -> None:
        # All state is set in __new__, so Client() keeps the configured values.
        pass

    @classmethod
    def current(cls) -> Client | None:
        return cls._current

    def dispatch_many(self, jobs: Any) -> list[str | None]:
        """Dispatch many tasks and workflows at once (one write); their ids, None where an
        unfinished instance already had the custom id."""
        return get_runtime().dispatch_many(check_jobs(jobs))

    def start_workflow(self, flow: Any) -> None:
        get_runtime().dispatch([flow])

    def start_task(self, task: Any) -> None:
        """Run a task on its own, as an instance of its own (``task.dispatch()``)."""
        get_runtime().dispatch(check_jobs([_kind(task, Task, "start_task", "a Task")]))

    def start_scheduled_workflow(self, flow: Any, cron: str) -> Any:
        """Dispatch the workflow at every fire time of ``cron``; returns the schedule."""
        return get_runtime().schedule(
            check_jobs([_kind(flow, Workflow, "start_scheduled_workflow", "a Workflow")])[0], cron
        )

    def start_scheduled_task(self, task: Any, cron: str) -> Any:
        """Dispatch the task at every fire time of ``cron``; returns the schedule."""
        return get_runtime().schedule(check_jobs([_kind(task, Task, "start_scheduled_task", "a Task")])[0], cron)

    def website_url(self, resource: str = "", params: str = "") -> str:
        """The address of ``resource`` in the local dashboard (the hosted website's, once), with
        ``params`` (a query string) and this client's environment. The dashboard asks for its
        token when the browser does not have it yet."""
        query = "&".join(part for part in (params.lstrip("?&"), _env_param(self.app_env)) if part)
        return f"{dashboard_url()}/{resource.lstrip('/')}" + (f"?{query}" if query else "")

    def instance_website_url(self, params: str = "") -> str:
        """The dashboard's instances, filtered by ``params`` (``name=...&custom_id=...``)."""
        return self.website_url("instances", params)

    def find_workflow(self, workflow_class: type, custom_id: Any) -> Any:
        return get_runtime().find(workflow_class, custom_id)

    def send_event(self, workflow_class: Any, custom_id: Any, event: Any) -> None:
        get_runtime().send_event(workflow_class, custom_id, event)

    def kill_workflow(self, workflow_class: type, custom_id: Any) -> None:
        get_runtime().control(workflow_class, custom_id, "kill")

    def pause_workflow(self, workflow_class: type, custom_id: Any) -> None:
        get_runtime().control(workflow_class, custom_id, "pause")

    def resume_workflow(self, workflow_class: type, custom_id: Any) -> None:
        get_runtime().control(workflow_class, custom_id, "resume")


def _kind(job: Any, base: type, method: str, what: str) -> Any:
    if not isinstance(job, base):
        raise InvalidArgumentError(f"{method}() takes {what}, not {type(job).__name__}")
    return job


def _env_param(env: Any) -> str:
    return f"env={quote(str(env))}" if env else ""

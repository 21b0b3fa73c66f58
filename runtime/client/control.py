"""Dispatch, find, pause, resume, kill, retry, send_event and rewind as store writes.

Clients never touch a journal: they create instances and post inbox items; the
daemon applies them. ``Control`` is what the CLI and the SDK's client runtime
use; ``ClientRuntime`` adapts it to the SDK's Runtime protocol.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import Any, cast

from zenaton._jobs import check_custom_id, check_jobs
from zenaton._runtime import current_runtime
from zenaton.abstracts.workflow import Workflow
from zenaton.client import Client
from zenaton.exceptions import DuplicateIdError, ExternalError, InstanceStateError
from zenaton_runtime.client.rewind_request import (
    RewindOutcome,
    RewindRequest,
    RewindState,
    answer,
    prepare,
    request_rewind,
)
from zenaton_runtime.errors import AmbiguousError, NotFoundError, StateError
from zenaton_runtime.instances import named_by_custom_id, new_instance, no_instance, status_refusal
from zenaton_runtime.models import CONTROLLABLE, UNFINISHED, InboxKind, Instance, InstanceStatus, Kind, Schedule
from zenaton_runtime.project.loader import Project
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.store import Store, open_store
from zenaton_runtime.timing.schedules import new_schedule

MIN_PREFIX = 6
POLL = 0.02  # seconds between two looks at an inbox while waiting for the daemon


class Control:
    """Client-side operations on one store, in one environment."""

    def __init__(self, store: Store, codec: Codec, env: str, timezone: str = "UTC") -> None:
        self.store = store
        self.codec = codec
        self.env = env
        self.timezone = timezone

    # -- dispatch and lookup ---------------------------------------------
    def dispatch(self, job: Any, custom_id: str | None = None) -> Instance:
        instance, started, task = new_instance(self.codec, job, env=self.env, now=self.store.now(), custom_id=custom_id)
        self.store.create_instance(instance, started, task)
        return instance

    def schedule(self, job: Any, cron: str, custom_id: str | None = None) -> Schedule:
        """Store a cron schedule for the job in this env (first fire: the next cron time)."""
        schedule = new_schedule(self.codec, job, cron, env=self.env, timezone=self.timezone, now=self.store.now())
        if custom_id is not None:
            schedule = dataclasses.replace(schedule, custom_id=check_custom_id(custom_id))
        self.store.add_schedule(schedule)
        return schedule

    def unschedule(self, ref: str) -> Schedule:
        """Delete a schedule by id or unique id prefix (6+ characters)."""
        matches = [
            s for s in self.store.list_schedules() if s.id == ref or (len(ref) >= MIN_PREFIX and s.id.startswith(ref))
        ]
        if not matches:
            raise NotFoundError(f"no schedule {ref!r}")
        if len(matches) > 1:
            raise AmbiguousError(f"schedule id prefix {ref!r} matches several schedules; give more characters")
        self.store.delete_schedule(matches[0].id)
        return matches[0]

    def dispatch_many(self, jobs: Sequence[Any]) -> list[Instance | None]:
        """Dispatch many jobs in one transaction; None where a custom id was already taken.

        Every job is checked (type, id, storable data) before anything is written.
        """
        now = self.store.now()
        records = [new_instance(self.codec, job, env=self.env, now=now) for job in check_jobs(jobs)]
        created = self.store.create_instances(records)
        return [record[0] if ok else None for record, ok in zip(records, created, strict=True)]

    def get(self, instance_id: str) -> Instance:
        instance = self.store.get_instance(instance_id)
        if instance is None:
            raise NotFoundError(f"no instance {instance_id!r}")
        return instance

    def by_custom_id(self, name: str, custom_id: Any, *, unfinished_only: bool = False) -> Instance | None:
        """The newest instance of this workflow name with this custom id in this env."""
        matches = self.store.list_instances(
            env=self.env, name=name, custom_id=check_custom_id(custom_id), kind="workflow"
        )
        return named_by_custom_id(matches, unfinished_only=unfinished_only)

    def resolve(self, ref: str, name: str | None = None) -> Instance:
        """An instance by generated id, unique id prefix (>= 6 chars) or custom id."""
        instance = self.store.get_instance(ref)
        if instance is not None:
            return instance
        if len(ref) >= MIN_PREFIX:
            by_prefix = self.store.list_instances(id_prefix=ref, name=name, limit=2)
            if len(by_prefix) > 1:
                raise AmbiguousError(f"id prefix {ref!r} matches several instances; give more characters")
            if by_prefix:
                return by_prefix[0]
        by_custom = self.store.list_instances(env=self.env, custom_id=ref, name=name)
        unfinished = [i for i in by_custom if i.status in UNFINISHED] or by_custom
        names = sorted({i.name for i in unfinished})
        if len(names) > 1:
            raise AmbiguousError(f"custom id {ref!r} matches instances of {', '.join(names)}; say which with --name")
        if unfinished:
            return unfinished[0]
        raise NotFoundError(f"no instance {ref!r} (not an id, an id prefix or a custom id in env {self.env!r})")

    def properties(self, instance: Instance) -> dict[str, Any]:
        text = instance.properties or instance.data
        value = self.codec.decode(text)
        return dict(vars(value)) if not isinstance(value, dict) else value

    # -- control: each posts an inbox item and returns its id ---------------
    def pause(self, instance: Instance) -> int:
        self._require(instance, "pause", *CONTROLLABLE["pause"], workflow_only=True)
        return self.store.post(instance.id, InboxKind.PAUSE)

    def resume(self, instance: Instance) -> int:
        self._require(instance, "resume", *CONTROLLABLE["resume"], workflow_only=True)
        return self.store.post(instance.id, InboxKind.RESUME)

    def kill(self, instance: Instance) -> int:
        self._require(instance, "kill", *CONTROLLABLE["kill"])
        return self.store.post(instance.id, InboxKind.KILL)

    def retry(self, instance: Instance) -> int:
        self._require(instance, "retry", InstanceStatus.PAUSED, InstanceStatus.FAILED)
        if not instance.error:
            raise StateError(f"instance {instance.id} is paused but has no error to retry; use resume")
        return self.store.post(instance.id, InboxKind.RETRY)

    def send_event(self, instance: Instance, event: Any) -> int:
        if instance.kind is not Kind.WORKFLOW:
            raise StateError(f"instance {instance.id} is a task; only workflows receive events")
        if instance.status not in UNFINISHED:
            raise StateError(
                f"{instance.name} {instance.id} is {instance.status.value}; "
                f"the event {type(event).__name__} was not delivered"
            )
        name = type(event).__name__
        return self.store.post(instance.id, InboxKind.EVENT, name, self.codec.encode(event, name))

    def rewind(self, instance: Instance, position: int, *, dry_run: bool = False) -> RewindRequest:
        """Plan a rewind to step ``position`` and, unless ``dry_run``, post it for the daemon.

        Refused here (StateError, NotFoundError, DuplicateInstanceError) when the plan is; the
        daemon plans again when it takes the request and answers it (``rewind_outcome``).
        """
        if dry_run:
            return RewindRequest(prepare(self.store, instance, position), None)
        plan, item_id = request_rewind(self.store, instance, position)
        return RewindRequest(plan, item_id)

    def rewind_outcome(self, request: RewindRequest) -> RewindOutcome:
        """Pending while the daemon has not taken the request; then what it journaled."""
        if request.item_id is None:
            raise ValueError("a dry run posts nothing: it has no outcome")
        if self.pending(request.instance_id, request.item_id):
            return RewindOutcome(RewindState.PENDING)
        entries = list(self.store.journal(request.instance_id))
        for run in self.store.archive(request.instance_id):
            entries += run.entries
        return answer(entries, request)

    def failed(self, name: str | None = None) -> list[Instance]:
        """Instances stopped by an error (paused workflows, failed tasks) in this env, newest first."""
        paused = self.store.list_instances(env=self.env, name=name, status=InstanceStatus.PAUSED)
        failed = self.store.list_instances(env=self.env, name=name, status=InstanceStatus.FAILED)
        return sorted([i for i in paused if i.error] + failed, key=lambda i: i.updated_at, reverse=True)

    def pending(self, instance_id: str, item_id: int) -> bool:
        """Whether an inbox item still waits for the daemon."""
        return any(item.id == item_id for item in self.store.inbox(instance_id))

    def applied(self, instance_id: str, item_id: int, timeout: float) -> bool:
        """Wait until the daemon has applied an inbox item; False if it has not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.pending(instance_id, item_id):
            if time.monotonic() >= deadline:
                return False
            self.idle(POLL)
        return True

    def idle(self, seconds: float) -> None:
        """What waiting for the daemon does between two looks at an inbox (tests step an engine)."""
        time.sleep(seconds)

    def in_env(self, env: str) -> Control:
        """This control, or one on the same store for another environment."""
        if env == self.env:
            return self
        other = copy.copy(self)  # whatever else this control carries (a test's idle, a subclass)
        other.env = env
        return other

    def _require(self, instance: Instance, action: str, *allowed: InstanceStatus, workflow_only: bool = False) -> None:
        if workflow_only and instance.kind is not Kind.WORKFLOW:
            raise StateError(f"cannot {action} task instance {instance.id}; only workflows can be paused and resumed")
        refused = status_refusal(action, instance, allowed)
        if refused:
            raise StateError(refused)


class ClientRuntime:
    """The SDK's runtime outside workflows: plain scripts, tasks, web apps."""

    def __init__(self, control: Control, env_from_client: bool = True) -> None:
        self._control = control  # in the configured env, used when the Client names none
        self._env_from_client = env_from_client

    @property
    def control_api(self) -> Control:
        """The Control for the current Client's env (or the configured one); reading changes nothing."""
        if not self._env_from_client:
            return self._control
        client = Client.current()
        env = client.app_env if client is not None else None
        return self._control.in_env(str(env)) if env else self._control

    def execute(self, jobs: Sequence[Any]) -> list[Any]:
        # Outside a workflow, as in the original SDK, execute() runs the job here and now.
        return [job.handle() for job in jobs]

    def dispatch(self, jobs: Sequence[Any]) -> None:
        api = self.control_api
        if len(jobs) == 1:
            api.dispatch(jobs[0])
            return
        refused = [job for job, made in zip(jobs, api.dispatch_many(jobs), strict=True) if made is None]
        if refused:
            raise DuplicateIdError(
                f"{len(refused)} of {len(jobs)} jobs were not dispatched: an unfinished instance has their id "
                f"(first: {type(refused[0]).__name__} {refused[0].id()!r})"
            )

    def dispatch_many(self, jobs: Sequence[Any]) -> list[str | None]:
        return [i.id if i else None for i in self.control_api.dispatch_many(jobs)]

    def wait(self, wait: Any) -> None:
        return None

    def find(self, workflow_class: type, custom_id: Any) -> Workflow | None:
        api = self.control_api
        instance = api.by_custom_id(workflow_class.__name__, custom_id)
        if instance is None:
            return None
        value = api.codec.decode(instance.properties or instance.data)
        # the replay core (greenlet and all) only when a script finds: the CLI starts without it
        from zenaton_runtime.replay.calls import found_workflow

        return cast(Workflow, found_workflow(workflow_class, value, instance.version))  # as a workflow's find()

    def send_event(self, workflow_class: type, custom_id: Any, event: Any) -> None:
        api = self.control_api
        api.send_event(self._target(api, workflow_class, custom_id), event)

    def schedule(self, job: Any, cron: str) -> Schedule:
        return self.control_api.schedule(job, cron)

    def control(self, workflow_class: type, custom_id: Any, action: str) -> None:
        api = self.control_api
        instance = self._target(api, workflow_class, custom_id)
        try:
            getattr(api, action)(instance)
        except StateError as error:
            raise InstanceStateError(str(error)) from None

    @staticmethod
    def _target(api: Control, workflow_class: type, custom_id: Any) -> Instance:
        instance = api.by_custom_id(workflow_class.__name__, custom_id, unfinished_only=True)
        if instance is None:
            raise no_instance(workflow_class.__name__, custom_id, api.env)
        return instance


def default_runtime() -> ClientRuntime:
    """The runtime for a plain script: the project found from the working directory."""
    from zenaton_runtime.project.config import load_config

    config = load_config()
    store = open_store(config.store_url, durability=config.durability)
    runtime = ClientRuntime(Control(store, Project(config.root).codec, config.env, config.timezone))
    current_runtime.set(runtime)  # later calls in this context reuse the connection
    return runtime


def task_runtime(project: Project, store_url: str, env: str) -> ClientRuntime:
    """The runtime installed while a task runs: dispatches go to the task's env."""
    store = open_store(store_url)
    return ClientRuntime(Control(store, project.codec, env), env_from_client=False)


def project_dashboard_url() -> str:
    """The dashboard's address from the project found from the working directory."""
    from zenaton_runtime.errors import ConfigError
    from zenaton_runtime.project.config import load_config

    try:
        config = load_config()
    except ConfigError as error:
        raise ExternalError(f"no dashboard is configured: set ZENATON_DASHBOARD_URL, or run in a project ({error})")
    host = config.dashboard_host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine reaches it on loopback
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{config.dashboard_port}"

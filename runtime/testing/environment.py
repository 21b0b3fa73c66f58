"""``WorkflowEnvironment``: the daemon's engine, in-process, on a memory store and a fake clock.

Dispatching creates the instance as a client would (``Control``); the engine's ``run_until_idle``
then does what the daemon would do by now; tasks run in this process (``InlineRunner``), or their
mocks do. The clock moves only when told (``advance``, ``advance_to``) or when a run is driven to
completion (``Run.until_complete``), and then from due time to due time, so each wait, retry
and schedule fires at its own time, in order, as it would with real time passing.

While the environment is open, the SDK's calls (``dispatch()``, ``where_id()``, ``schedule()``,
``Client``...) in the test and in tasks go to its store, never to the project's real one.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zenaton._runtime import current_runtime
from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.errors import ConfigError
from zenaton_runtime.models import Schedule
from zenaton_runtime.pool.inline import InlineRunner
from zenaton_runtime.project.config import Config, find_root, load_config
from zenaton_runtime.project.loader import Project, load_project
from zenaton_runtime.store import Store, open_store
from zenaton_runtime.testing.mocks import _UNSET, TaskMock, task_mock
from zenaton_runtime.testing.runs import Run
from zenaton_runtime.timing.clock import FakeClock

DEFAULT_START = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)  # a Monday, midnight UTC
MAX_JUMPS = 100_000  # due times one advance may go through: a runaway schedule, not a test
_PROJECTS: dict[tuple[Path, str | None, str | None], Project] = {}  # imported once per process


def find_project(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards holding a zenaton.toml (or a boot.py)."""
    try:
        return find_root(start)[0]
    except ConfigError:
        return None


class WorkflowEnvironment:
    """The engine, in this process, for a test. ``project``: the project's directory or any
    directory in it (default: the working directory); its zenaton.toml says what to import, the
    env and the timezone. ``start``: the fake clock's first time (a datetime, or epoch seconds;
    default 2024-01-01 00:00 UTC, a Monday). Use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        project: str | Path | None = None,
        *,
        start: _dt.datetime | float | None = None,
        env: str | None = None,
        timezone: str | None = None,
        decision_timeout: float | None = None,
    ) -> None:
        self.project, config = _load(Path(project) if project is not None else Path.cwd())
        self.env = env or (config.env if config else "test")
        self.timezone = timezone or (config.timezone if config else "UTC")
        self._zone = _zone(self.timezone)
        self.clock = FakeClock(_timestamp(DEFAULT_START if start is None else start, self._zone))
        self.store: Store = open_store("memory://", now=self.clock.now)
        self.mocks: dict[str, TaskMock] = {}
        self.log: list[str] = []  # what the engine logged (the daemon's log lines)
        self.control = Control(self.store, self.project.codec, self.env, self.timezone)
        self.runtime = ClientRuntime(self.control, env_from_client=False)
        self.runner = InlineRunner(self.project, runtime_factory=self._task_runtime, handlers=self.mocks)
        timeout = decision_timeout if decision_timeout is not None else (config.decision_timeout if config else 10.0)
        self.engine = Engine(
            self.store, self.project, self.runner, clock=self.clock, decision_timeout=timeout, log=self.log.append
        )
        self._token: contextvars.Token[Any] | None = current_runtime.set(self.runtime)
        self._closed = False

    # -- lifetime --------------------------------------------------------------------------
    def __enter__(self) -> WorkflowEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop using it: suspended runs closed, the SDK's calls no longer sent here."""
        if self._closed:
            return
        self._closed = True
        if self._token is not None:
            try:
                current_runtime.reset(self._token)
            except ValueError:  # closed from another context: leave that context's runtime alone
                pass
            self._token = None
        self.engine.cache.clear()
        self.runner.close()
        self.store.close()

    def _task_runtime(self, env: str) -> ClientRuntime:
        return ClientRuntime(Control(self.store, self.project.codec, env, self.timezone), env_from_client=False)

    # -- tasks ---------------------------------------------------------------------------------
    def mock_task(self, task_class: Any, handler: Any = None, *, returns: Any = _UNSET, raises: Any = None) -> TaskMock:
        """From now on, the attempts of ``task_class`` call ``handler(task)`` instead of its
        ``handle()``, or return ``returns``, or raise ``raises`` (exactly one). The mock keeps the
        tasks it was called with (``calls``). ``on_error_retry_delay`` still decides retries."""
        mock = task_mock(task_class, handler, returns=returns, raises=raises)
        self.mocks[mock.name] = mock
        return mock

    def unmock_task(self, task_class: Any) -> None:
        """The task's attempts run its real ``handle()`` again."""
        self.mocks.pop(getattr(task_class, "__name__", str(task_class)), None)

    # -- instances -------------------------------------------------------------------------------
    def dispatch(self, job: Any, custom_id: str | None = None) -> Run:
        """Start a workflow or a task, as ``job.dispatch()`` would; nothing runs until the engine
        is moved (``run.until_waiting()``, ``advance`` ...)."""
        return Run(self, self.control.dispatch(job, custom_id=custom_id).id)

    def run(self, instance_id: str) -> Run:
        """The run of an instance by its id (as ``dispatch`` or a step's result gives it)."""
        return Run(self, self.control.get(instance_id).id)

    def find(self, workflow_class: Any, custom_id: Any) -> Run | None:
        """The instance of this workflow with this custom id (the unfinished one first), as
        ``where_id`` finds it."""
        name = workflow_class if isinstance(workflow_class, str) else workflow_class.__name__
        instance = self.control.by_custom_id(name, custom_id)
        return None if instance is None else Run(self, instance.id)

    def runs(self, job_class: Any = None) -> list[Run]:
        """Every instance (of this workflow or task class, or name), oldest first."""
        name = job_class if job_class is None or isinstance(job_class, str) else job_class.__name__
        return [Run(self, i.id) for i in reversed(self.store.list_instances(name=name))]

    def schedule(self, job: Any, cron: str) -> Schedule:
        """Dispatch ``job`` at every fire time of ``cron`` (in the env's timezone), as
        ``job.schedule(cron)`` does; the schedules fire as the clock moves."""
        return self.control.schedule(job, cron)

    # -- controls: each is applied at once ---------------------------------------------------------
    def send_event(self, run: Run, event: Any) -> None:
        self.control.send_event(run.instance, event)
        self.run_until_idle()

    def pause(self, run: Run) -> None:
        self.control.pause(run.instance)
        self.run_until_idle()

    def resume(self, run: Run) -> None:
        self.control.resume(run.instance)
        self.run_until_idle()

    def kill(self, run: Run) -> None:
        self.control.kill(run.instance)
        self.run_until_idle()

    def retry(self, run: Run) -> None:
        self.control.retry(run.instance)
        self.run_until_idle()

    def rewind(self, run: Run, step: int) -> None:
        self.control.rewind(run.instance, step)
        self.run_until_idle()

    # -- time ------------------------------------------------------------------------------------------
    @property
    def now(self) -> _dt.datetime:
        """The fake clock's time, in UTC."""
        return _dt.datetime.fromtimestamp(self.clock.now(), _dt.timezone.utc)

    def run_until_idle(self) -> None:
        """What the daemon would do by now: step the engine until nothing is left that can run
        without the clock moving."""
        self.engine.run_until_idle()

    def advance(
        self,
        delta: _dt.timedelta | float | None = None,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> None:
        """Move the clock forward by ``delta`` (a timedelta, or seconds) or by the keywords,
        firing on the way everything that falls due, each at its own time."""
        total = _dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        if delta is not None:
            total += delta if isinstance(delta, _dt.timedelta) else _dt.timedelta(seconds=_number(delta, "advance"))
        if total < _dt.timedelta(0):
            raise ValueError(f"advance() moves the clock forward only, not by {total}")
        self.advance_to(self.clock.now() + total.total_seconds())

    def advance_to(self, when: _dt.datetime | _dt.date | float) -> None:
        """Move the clock to ``when`` (a datetime, naive ones in the env's timezone; a date:
        its midnight; or epoch seconds), firing on the way everything that falls due."""
        target = _timestamp(when, self._zone)
        if target < self.clock.now():
            raise ValueError(f"advance_to() cannot go back in time: {when} is before the clock's {self.now}")
        self.run_until_idle()
        self.skip_time(until=lambda: False, horizon=target)
        self.clock.set(target)
        self.run_until_idle()

    def skip_time(self, until: Callable[[], bool], within: Any = None, horizon: float | None = None) -> None:
        """Move the clock from one due time to the next (running what each brings) until
        ``until()`` holds, nothing is due any more, or the next due time is past ``horizon``
        (epoch seconds) or ``within`` (a timedelta or seconds) from now."""
        if within is not None:
            span = within.total_seconds() if isinstance(within, _dt.timedelta) else _number(within, "within")
            limit = self.clock.now() + span
            horizon = limit if horizon is None else min(horizon, limit)
        for _ in range(MAX_JUMPS):
            if until():
                return
            due = self.store.next_due(self.clock.now())
            if due is None or (horizon is not None and due > horizon):
                return
            self.clock.set(due)
            self.run_until_idle()
        raise RuntimeError(f"more than {MAX_JUMPS} due times went by (a schedule firing without end?)")

    def __repr__(self) -> str:
        return f"<WorkflowEnvironment {self.project.root} env={self.env!r} at {self.now.isoformat()}>"


def _load(start: Path) -> tuple[Project, Config | None]:
    root = find_project(start)
    if root is None:  # no project files: classes are found by module, under the directory given
        project = Project(start)
        project.scan()
        return project, None
    config = load_config(root)
    key = (config.root, config.boot, config.module)
    if key not in _PROJECTS:
        _PROJECTS[key] = load_project(config.root, config.boot, config.module)
    return _PROJECTS[key], config


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {name!r}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}() takes a timedelta or a number of seconds, not {value!r}")
    return float(value)


def _timestamp(when: Any, zone: zoneinfo.ZoneInfo) -> float:
    if isinstance(when, _dt.datetime):
        return (when if when.tzinfo is not None else when.replace(tzinfo=zone)).timestamp()
    if isinstance(when, _dt.date):
        return _dt.datetime(when.year, when.month, when.day, tzinfo=zone).timestamp()
    return _number(when, "a time")

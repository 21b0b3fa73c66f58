"""The rest of the original SDK's surface: Wait's own view of when it ends (one computation with
the engine's), the base classes as the original had them, the Client's task, schedule and website
calls, and zenaton.__version__."""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import zoneinfo
from pathlib import Path
from typing import Any, Iterator

import pytest
from flowlib.extra import WaitsLike
from flowlib.tasks import Echo
from flowlib.workflows import Sequential

import zenaton
import zenaton.traits.with_duration
import zenaton.traits.with_timestamp
from zenaton._runtime import current_runtime
from zenaton._wait_times import fire_at as sdk_fire_at
from zenaton.abstracts.event import Event
from zenaton.abstracts.job import Job
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.client import Client
from zenaton.exceptions import ExternalError, InvalidArgumentError, OutOfRangeError
from zenaton.tasks.wait import Wait
from zenaton.workflows.version import Version
from zenaton_runtime.timing import waits

BUFFERS = [
    ([["seconds", 30]], "UTC"),
    ([["days", 1]], "Europe/Paris"),
    ([["months", 1]], "Europe/Paris"),
    ([["weeks", 1], ["hours", 2]], "America/New_York"),
    ([["at", "8:00"]], "Asia/Kolkata"),
    ([["monday", 1], ["at", "8:00"]], "Europe/Paris"),
    ([["day_of_month", 31]], "UTC"),
    ([["day_of_month", 15], ["at", "23:30"]], "Australia/Sydney"),
]


class Ping(Event):
    pass


@contextlib.contextmanager
def clock_at(monkeypatch: pytest.MonkeyPatch, now: float) -> Iterator[None]:
    """What the SDK's Wait reads as now."""
    for module in (zenaton.traits.with_duration, zenaton.traits.with_timestamp):
        monkeypatch.setattr(module.time, "time", lambda: now)
    yield


def wait_of(buffer: list[list[Any]], timezone: str) -> Wait:
    wait = Wait()
    wait.buffer = [list(entry) for entry in buffer]
    wait.timezone = timezone
    return wait


def test_one_computation_for_the_engine_and_the_sdk() -> None:
    assert waits.fire_at is sdk_fire_at


@pytest.mark.parametrize("buffer, timezone", BUFFERS)
def test_what_a_wait_tells_is_what_the_engine_schedules(
    harness: Any, monkeypatch: pytest.MonkeyPatch, buffer: list[list[Any]], timezone: str
) -> None:
    harness.clock.set(dt.datetime(2026, 3, 27, 18, 45, 12, tzinfo=dt.timezone.utc).timestamp())  # before a DST change
    instance = harness.dispatch(WaitsLike(buffer, timezone))
    harness.run()
    (started,) = [json.loads(e.data) for e in harness.store.journal(instance) if e.type.value == "wait_started"]
    now = harness.clock.now()
    with clock_at(monkeypatch, now):
        wait = wait_of(buffer, timezone)
        duration = wait.get_duration()
        timestamp, length = wait.get_timetamp_or_duration()
    assert started["fire_at"] == pytest.approx(now + duration, abs=1e-3)
    if any(unit in ("at", "day_of_month", "monday") for unit, _ in buffer):
        assert (timestamp, length) == (int(started["fire_at"]), None)
    else:
        assert timestamp is None and length == pytest.approx(started["fire_at"] - now, abs=1e-3)
    harness.advance(started["fire_at"] - now)
    assert harness.result(instance) == "woke"  # and it ends then


def test_get_timetamp_or_duration_as_the_original() -> None:
    assert Wait().get_timetamp_or_duration() == [None, None]
    assert Wait(Ping).get_duration() == 0
    assert Wait().seconds(30).get_timetamp_or_duration() == [None, 30.0]
    assert Wait().minutes(2).seconds(5).get_duration() == 125.0
    assert Wait().timestamp(1_900_000_000).get_timetamp_or_duration() == [1_900_000_000, None]
    wait = Wait().hours(3)
    assert wait.get_timestamp_or_duration() == wait.get_timetamp_or_duration()  # the spelled-right alias
    at = Wait().at("8:00").set_timezone("Europe/Paris").get_timetamp_or_duration()[0]
    local = dt.datetime.fromtimestamp(at, zoneinfo.ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.second) == (8, 0, 0)


def test_out_of_range_values_are_value_errors_as_in_the_original() -> None:
    for build in (lambda: Wait().day_of_month(0), lambda: Wait().day_of_month(32), lambda: Wait().at("24:00")):
        with pytest.raises(ValueError) as raised:
            build()
        assert isinstance(raised.value, (OutOfRangeError, InvalidArgumentError, ExternalError))
    with pytest.raises(InvalidArgumentError) as malformed:
        Wait().at("8h")
    assert not isinstance(malformed.value, ValueError)
    with pytest.raises(ExternalError, match="cannot be combined"):
        Wait().days(1).monday().get_timetamp_or_duration()  # incompatible methods: told when asked
    with pytest.raises(ExternalError, match="Unknown timezone"):
        Wait().set_timezone("Mars/Olympus_Mons")


def test_wait_event_and_event_class_as_in_the_original() -> None:
    assert Wait(Ping).event == "Ping" and Wait("Ping").event == "Ping" and Wait().event is None
    assert Wait().event_class(Ping) and not Wait().event_class(Echo) and not Wait().event_class("Ping")
    assert Wait().valid_param(None) and Wait().valid_param("Ping") and not Wait().valid_param(42)
    assert "must be a zenaton.abstracts.event.Event subclass" in Wait().error
    with pytest.raises(ExternalError):
        Wait(42)


def test_base_classes_behave_as_the_original() -> None:
    assert [Job().handle(), Task().handle(), Workflow().handle()] == [None, None, None]
    assert isinstance(Event(), Event)

    class Nothing(Task):
        pass

    class Idle(Workflow):
        pass

    assert Nothing().handle() is None and Idle().handle() is None and Idle().id() is None
    assert Nothing().on_error_retry_delay(RuntimeError()) is None

    class Unversioned(Version):
        pass

    with pytest.raises(NotImplementedError, match="override the `versions' method"):
        Unversioned().versions()


def test_version_of_the_package() -> None:
    assert zenaton.__version__ == importlib.metadata.version("zenaton")


@contextlib.contextmanager
def installed(runtime: Any) -> Iterator[None]:
    token = current_runtime.set(runtime)
    try:
        yield
    finally:
        current_runtime.reset(token)


def test_client_starts_tasks_and_schedules(harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Client, "_current", None)
    client = Client("app", "token", "dev")
    with installed(harness.runtime):
        client.start_task(Echo("alone"))
        workflow_schedule = client.start_scheduled_workflow(Sequential(1), "0 8 * * *")
        task_schedule = client.start_scheduled_task(Echo("every hour"), "0 * * * *")
        with pytest.raises(InvalidArgumentError, match=r"start_task\(\) takes a Task, not Sequential"):
            client.start_task(Sequential(1))
        with pytest.raises(InvalidArgumentError, match=r"takes a Workflow, not Echo"):
            client.start_scheduled_workflow(Echo("x"), "* * * * *")
    (task,) = harness.store.list_instances(kind="task")
    assert task.name == "Echo"
    harness.run()
    assert harness.status(task.id) == "completed"
    schedules = {s.id: s for s in harness.store.list_schedules()}
    assert schedules[workflow_schedule.id].name == "Sequential" and schedules[workflow_schedule.id].cron == "0 8 * * *"
    assert schedules[task_schedule.id].kind.value == "task"


def test_website_urls_point_at_the_local_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Client, "_current", None)
    monkeypatch.delenv("ZENATON_DASHBOARD_URL", raising=False)
    root = tmp_path / "proj"
    root.mkdir()
    (root / "zenaton.toml").write_text('[project]\nname = "p"\n\n[dashboard]\nport = 9090\n')
    monkeypatch.chdir(root)
    client = Client("p", "", "staging")
    assert client.website_url() == "http://127.0.0.1:9090/?env=staging"
    assert client.instance_website_url("name=Flow&custom_id=a%20b") == (
        "http://127.0.0.1:9090/instances?name=Flow&custom_id=a%20b&env=staging"
    )
    monkeypatch.setenv("ZENATON_DASHBOARD_URL", "http://localhost:18025/")
    assert client.website_url("errors") == "http://localhost:18025/errors?env=staging"
    monkeypatch.delenv("ZENATON_DASHBOARD_URL")
    monkeypatch.chdir(tmp_path)  # no project here, no variable: nothing to point at
    with pytest.raises(ExternalError, match="no dashboard is configured: set ZENATON_DASHBOARD_URL"):
        client.website_url()

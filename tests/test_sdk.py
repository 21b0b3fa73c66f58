"""The SDK surface users import: paths, argument checks, Wait builders, contexts, Client, Version.

Behaviour that needs the engine goes through the harness (real store, fake clock,
tasks run in-process); the rest is checked on the SDK objects directly.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import subprocess
import sys
import threading
import zoneinfo
from typing import Any, Iterator

import pytest
from flowlib.extra import (
    ContextFlow,
    ContextProbe,
    CustomId,
    DispatchReturns,
    HoldsLambda,
    HoldsLock,
    LockLater,
    NotAJob,
    StartsBadVersion,
    StartsCustomId,
    TaskInVersions,
    TupleVersions,
    UsesNotAJob,
    WaitUntil,
)
from flowlib.tasks import Add, Echo, Ping
from flowlib.workflows import Greeting, GreetingV1, Sequential

from zenaton_runtime.client.control import ClientRuntime, Control
from zenaton_runtime.errors import SerializationError
from zenaton._runtime import current_runtime
from zenaton.abstracts.event import Event
from zenaton.client import Client
from zenaton.exceptions import Error, ExternalError, InternalError, InvalidArgumentError
from zenaton.parallel import Parallel
from zenaton.tasks.wait import Wait

# -- import paths (ARCHITECTURE section 3) -------------------------------------------------

SDK_NAMES = [
    ("zenaton.abstracts.job", "Job"),
    ("zenaton.abstracts.workflow", "Workflow"),
    ("zenaton.abstracts.task", "Task"),
    ("zenaton.abstracts.event", "Event"),
    ("zenaton.traits.zenatonable", "Zenatonable"),
    ("zenaton.traits.with_duration", "WithDuration"),
    ("zenaton.traits.with_timestamp", "WithTimestamp"),
    ("zenaton.tasks.wait", "Wait"),
    ("zenaton.parallel", "Parallel"),
    ("zenaton.client", "Client"),
    ("zenaton.query.builder", "Builder"),
    ("zenaton.workflows.version", "Version"),
    ("zenaton.contexts", "WorkflowContext"),
    ("zenaton.contexts", "TaskContext"),
    ("zenaton.contexts.workflow_context", "WorkflowContext"),
    ("zenaton.contexts.task_context", "TaskContext"),
    ("zenaton.exceptions", "Error"),
    ("zenaton.exceptions", "InternalError"),
    ("zenaton.exceptions", "ExternalError"),
    ("zenaton.exceptions", "InvalidArgumentError"),
]


@pytest.mark.parametrize("module, name", SDK_NAMES)
def test_every_sdk_import_path_works(module: str, name: str) -> None:
    assert isinstance(getattr(importlib.import_module(module), name), type)


def test_exception_hierarchy() -> None:
    assert issubclass(InvalidArgumentError, ExternalError)
    assert issubclass(ExternalError, Error) and issubclass(InternalError, Error)
    assert issubclass(Error, Exception)


def test_importing_the_sdk_does_not_import_the_engine() -> None:
    imports = "; ".join(f"from {module} import {name}" for module, name in SDK_NAMES)
    code = f"import sys; {imports}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('zenaton_runtime', 'runtime', 'sqlite3')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- helpers ---------------------------------------------------------------------------------

@contextlib.contextmanager
def installed(runtime: Any) -> Iterator[Any]:
    """The SDK's current runtime, as a plain script would have it."""
    token = current_runtime.set(runtime)
    try:
        yield runtime
    finally:
        current_runtime.reset(token)


@pytest.fixture
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client keeps its configuration on the class; start and end each test without one."""
    monkeypatch.setattr(Client, "_current", None)


def journal_data(harness: Any, instance_id: str, entry_type: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in harness.store.journal(instance_id) if e.type.value == entry_type]


# -- execute / dispatch of things that are not jobs ------------------------------------------

def test_parallel_of_something_that_is_not_a_job_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="Task or Workflow, not object"):
        Parallel(object())
    with pytest.raises(InvalidArgumentError, match="not NotAJob"):
        Parallel(Add(1), NotAJob())


def test_a_plain_zenatonable_class_cannot_be_executed_or_dispatched(harness) -> None:
    with installed(harness.runtime):
        with pytest.raises(InvalidArgumentError, match="not NotAJob"):
            NotAJob().dispatch()
        with pytest.raises(InvalidArgumentError, match="not NotAJob"):
            NotAJob().execute()
    assert harness.store.list_instances() == []


def test_where_id_needs_a_workflow_class() -> None:
    with pytest.raises(ExternalError):
        Add.where_id("x")


@pytest.mark.parametrize("how", ["execute", "dispatch", "parallel"])
def test_a_workflow_executing_a_non_job_is_paused_with_the_error(harness, how: str) -> None:
    instance_id = harness.dispatch(UsesNotAJob(how))
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "InvalidArgumentError"
    assert "not NotAJob" in error["message"]
    # nothing was scheduled for the good half of the Parallel either
    assert not [k for k in harness.kinds(instance_id) if k.startswith(("task_scheduled", "dispatched"))]


# -- custom ids ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [3.5, ["a"], {"a": 1}, True, b"bytes", "x" * 257, 10 ** 300])
def test_bad_custom_ids_are_refused_at_dispatch_and_nothing_is_stored(harness, value: Any) -> None:
    with installed(harness.runtime):
        with pytest.raises(InvalidArgumentError, match="ID must"):
            CustomId(value).dispatch()
    assert harness.store.list_instances() == []


@pytest.mark.parametrize("value, stored", [("x" * 256, "x" * 256), (42, "42"), ("", ""), (None, None)])
def test_good_custom_ids_are_kept_as_strings(harness, value: Any, stored: Any) -> None:
    with installed(harness.runtime):
        assert CustomId(value).dispatch() is None
    (instance,) = harness.store.list_instances()
    assert instance.custom_id == stored
    harness.run()
    assert harness.status(instance.id) == "completed"


def test_a_child_with_a_bad_id_pauses_its_parent(harness) -> None:
    parent_id = harness.dispatch(StartsCustomId("y" * 300))
    harness.run()
    assert harness.status(parent_id) == "paused"
    assert harness.error(parent_id)["class"] == "InvalidArgumentError"
    assert harness.store.list_instances(name="CustomId") == []


# -- dispatch returns None -----------------------------------------------------------------

def test_dispatch_outside_a_workflow_returns_none_and_records_instances(harness) -> None:
    with installed(harness.runtime):
        assert Sequential(1).dispatch() is None
        assert Parallel(Add(1), Add(2)).dispatch() is None
        assert Echo("t").dispatch() is None
    names = sorted(i.name for i in harness.store.list_instances())
    assert names == ["Add", "Add", "Echo", "Sequential"]
    harness.run()
    assert {i.status.value for i in harness.store.list_instances()} == {"completed"}


def test_execute_outside_a_workflow_runs_the_task_here(harness) -> None:
    with installed(harness.runtime):
        assert Add(2, 3).execute() == 5
        assert Parallel(Add(1, 1), Echo("e")).execute() == [2, "e"]
    assert harness.store.list_instances() == []


def test_dispatch_inside_a_workflow_returns_none(harness) -> None:
    instance_id = harness.dispatch(DispatchReturns())
    harness.run()
    assert harness.result(instance_id) == [None, None]
    assert harness.properties(instance_id)["returned"] == [None, None]
    assert sorted(i.name for i in harness.store.list_instances(parent_id=instance_id)) == ["Add", "Add", "Echo"]


# -- Wait builders ---------------------------------------------------------------------------

PARIS_NOON = dt.datetime(2030, 1, 2, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    "build, buffer",
    [
        (lambda w: w.seconds(4), [["seconds", 4]]),
        (lambda w: w.minutes(2), [["minutes", 2]]),
        (lambda w: w.hours(1.5), [["hours", 1.5]]),
        (lambda w: w.days(3), [["days", 3]]),
        (lambda w: w.weeks(1), [["weeks", 1]]),
        (lambda w: w.months(2), [["months", 2]]),
        (lambda w: w.years(1), [["years", 1]]),
        (lambda w: w.seconds(), [["seconds", 1]]),
        (lambda w: w.timestamp(1_900_000_000), [["timestamp", 1_900_000_000]]),
        (lambda w: w.timestamp(PARIS_NOON), [["timestamp", PARIS_NOON.timestamp()]]),
        (lambda w: w.at("15:10:23"), [["at", "15:10:23"]]),
        (lambda w: w.at("7:05"), [["at", "7:05"]]),
        (lambda w: w.day_of_month(31), [["day_of_month", 31]]),
        (lambda w: w.monday(), [["monday", 1]]),
        (lambda w: w.tuesday(2), [["tuesday", 2]]),
        (lambda w: w.wednesday(), [["wednesday", 1]]),
        (lambda w: w.thursday(), [["thursday", 1]]),
        (lambda w: w.friday(3), [["friday", 3]]),
        (lambda w: w.saturday(), [["saturday", 1]]),
        (lambda w: w.sunday(), [["sunday", 1]]),
        (lambda w: w.days(1).hours(2).minutes(3), [["days", 1], ["hours", 2], ["minutes", 3]]),
        (lambda w: w.monday().at("08:00"), [["monday", 1], ["at", "08:00"]]),
    ],
)
def test_wait_builders_fill_the_buffer_and_chain(build: Any, buffer: list[list[Any]]) -> None:
    wait = Wait(Ping)
    assert build(wait) is wait
    assert wait.buffer == buffer
    assert wait.event == "Ping"
    assert wait.timezone == "UTC"


def test_wait_event_and_timezone() -> None:
    assert Wait().event is None and Wait().buffer == []
    assert Wait("Ping").event == "Ping"
    assert Wait(Event).event == "Event"
    wait = Wait(Ping).set_timezone("Europe/Paris")
    assert wait.timezone == "Europe/Paris"
    assert Wait(Ping).timezone == "UTC"  # set on the instance only


def test_waits_do_not_share_buffers() -> None:
    first, second = Wait(), Wait()
    first.seconds(1)
    assert second.buffer == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: Wait(int),
        lambda: Wait(3),
        lambda: Wait(Ping()),
        lambda: Wait(Add),
        lambda: Wait().at("25:00"),
        lambda: Wait().at("12:60"),
        lambda: Wait().at("12:00:61"),
        lambda: Wait().at("noon"),
        lambda: Wait().at(1510),
        lambda: Wait().set_timezone("Mars/Olympus_Mons"),
        lambda: Wait().set_timezone(""),
        lambda: Wait().set_timezone(None),
        lambda: Wait().seconds(-1),
        lambda: Wait().seconds("4"),
        lambda: Wait().days(True),
        lambda: Wait().months(1.5),
        lambda: Wait().day_of_month(0),
        lambda: Wait().day_of_month(32),
        lambda: Wait().monday(0),
        lambda: Wait().friday(1.5),
        lambda: Wait().timestamp("tomorrow"),
        lambda: Wait().timestamp(dt.datetime(2030, 1, 1)),  # naive: which zone?
    ],
)
def test_wait_builders_refuse_bad_arguments(build: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        build()


def test_wait_at_with_a_timezone_fires_then(harness) -> None:
    instance_id = harness.dispatch(WaitUntil())
    harness.run()
    (wait,) = journal_data(harness, instance_id, "wait_started")
    now = dt.datetime.fromtimestamp(harness.clock.now(), zoneinfo.ZoneInfo("Europe/Paris"))
    expected = now.replace(hour=15, minute=10, second=23, microsecond=0)
    if expected <= now:
        expected = (now + dt.timedelta(days=1)).replace(hour=15, minute=10, second=23, microsecond=0)
    assert wait["fire_at"] == expected.timestamp()
    harness.advance(expected.timestamp() - harness.clock.now() - 1)
    assert harness.status(instance_id) == "running"
    harness.advance(1)
    assert harness.result(instance_id) == "woke"


def test_wait_outside_a_workflow_returns_at_once(harness) -> None:
    with installed(harness.runtime):
        assert Wait(Ping).seconds(4).execute() is None


# -- task and workflow contexts --------------------------------------------------------------

def test_task_context_id_and_retry_index_inside_the_running_task(harness) -> None:
    instance_id = harness.dispatch(ContextFlow())
    harness.run()
    harness.advance(1)
    harness.advance(1)
    probe, retried = harness.result(instance_id)
    scheduled = {d["task_id"] for d in journal_data(harness, instance_id, "task_scheduled")}
    assert probe["retry_index"] == 0 and probe["id"] in scheduled
    assert retried["retry_index"] == 2 and retried["id"] in scheduled
    assert probe["id"] != retried["id"]
    outputs = [d["stdout"] for d in journal_data(harness, instance_id, "task_failed")]
    outputs += [d["stdout"] for d in journal_data(harness, instance_id, "task_completed")][1:]
    tid = retried["id"]
    assert outputs == [
        f"attempt id={tid} retry_index=0\nretry delay asked at retry_index=1\n",
        f"attempt id={tid} retry_index=1\nretry delay asked at retry_index=2\n",
        f"attempt id={tid} retry_index=2\n",
    ]


def test_workflow_context_id_is_the_instance_id_across_steps_and_replay(harness) -> None:
    harness.engine.cache.capacity = 0  # every step rebuilds the run by replay
    instance_id = harness.dispatch(ContextFlow())
    harness.run()
    harness.advance(1)
    harness.advance(1)
    assert harness.status(instance_id) == "completed"
    assert harness.properties(instance_id)["ids"] == [instance_id] * 3


def test_a_standalone_task_sees_its_own_task_id(harness) -> None:
    instance_id = harness.dispatch(ContextProbe())
    harness.run()
    (task,) = harness.store.tasks_of(instance_id)
    (completed,) = journal_data(harness, instance_id, "task_completed")
    assert harness.project.codec.decode(json.dumps(completed["result"])) == {"id": task.id, "retry_index": 0}


def test_contexts_outside_a_run_are_empty() -> None:
    assert ContextProbe().get_context().id is None
    assert ContextFlow().get_context().id is None


# -- properties that cannot be stored --------------------------------------------------------

@pytest.mark.parametrize(
    "make, where, type_name",
    [
        (HoldsLock, "HoldsLock.settings['guards'][0]", "lock"),
        (HoldsLambda, "HoldsLambda.callback", "function"),
        (lambda: Echo(threading.Lock()), "Echo.value", "lock"),
    ],
)
def test_unstorable_property_is_refused_at_dispatch_naming_its_path(harness, make: Any, where: str, type_name: str) -> None:
    with installed(harness.runtime):
        with pytest.raises(SerializationError) as caught:
            make().dispatch()
    message = str(caught.value)
    assert where in message and repr(type_name) in message
    assert harness.store.list_instances() == []
    assert harness.store.counts() == {"running": 0, "paused": 0, "completed": 0, "killed": 0, "failed": 0, "tasks_queued": 0}


def test_unstorable_property_gained_while_running_pauses_with_its_path(harness) -> None:
    instance_id = harness.dispatch(LockLater())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "SerializationError"
    assert "'lock'" in error["message"] and "LockLater['guard']" in error["message"]


# -- Client ----------------------------------------------------------------------------------

def test_client_keeps_its_settings(no_client: None) -> None:
    configured = Client("my-app", "secret-token", "staging")
    again = Client()
    assert again is configured
    assert (again.app_id, again.api_token, again.app_env) == ("my-app", "secret-token", "staging")
    assert Client.current() is configured
    replaced = Client("other", "token-2", "prod")
    assert Client() is replaced and Client().app_env == "prod"


def _client_runtime(harness: Any, env_from_client: bool) -> ClientRuntime:
    return ClientRuntime(Control(harness.store, harness.project.codec, "dev"), env_from_client=env_from_client)


def test_client_env_chooses_the_environment_of_dispatches(harness, no_client: None) -> None:
    runtime = _client_runtime(harness, env_from_client=True)
    with installed(runtime):
        Sequential(1).dispatch()  # no Client yet: the configured env
        Client("app", "token", "staging")
        Sequential(2).dispatch()
        Client().start_workflow(Sequential(3))
        Client("app", "token", "prod")
        Echo("x").dispatch()
        assert Sequential.where_id("seq-2").find() is None  # looked up in prod
    envs = {i.custom_id or i.name: i.env for i in harness.store.list_instances()}
    assert envs == {"seq-1": "dev", "seq-2": "staging", "seq-3": "staging", "Echo": "prod"}


def test_client_without_env_keeps_the_configured_environment(harness, no_client: None) -> None:
    runtime = _client_runtime(harness, env_from_client=True)
    with installed(runtime):
        Client("app", "token", "staging")
        Sequential(1).dispatch()
        Client("app", "token")  # no environment given: back to the configured one
        Sequential(2).dispatch()
    envs = {i.custom_id: i.env for i in harness.store.list_instances()}
    assert envs == {"seq-1": "staging", "seq-2": "dev"}


def test_client_env_ignored_where_the_environment_is_fixed(harness, no_client: None) -> None:
    Client("app", "token", "staging")
    with installed(_client_runtime(harness, env_from_client=False)):
        Sequential(1).dispatch()
    (instance,) = harness.store.list_instances()
    assert instance.env == "dev"


def test_client_find_and_send_event_go_to_the_client_env(harness, no_client: None) -> None:
    from flowlib.workflows import EventFlow

    runtime = _client_runtime(harness, env_from_client=True)
    with installed(runtime):
        Client("app", "token", "staging")
        EventFlow("e").dispatch()
    harness.run()
    with installed(runtime):
        Client().send_event(EventFlow, "e", Ping("hi"))
    harness.run()
    with installed(runtime):
        found = EventFlow.where_id("e").find()
    assert isinstance(found, EventFlow) and found.pings == ["hi"]


def test_reading_control_api_changes_nothing(harness, no_client: None) -> None:
    configured = Control(harness.store, harness.project.codec, "dev")
    runtime = ClientRuntime(configured, env_from_client=True)
    assert runtime.control_api is configured  # no Client: the configured env
    Client("app", "token", "staging")
    staging = runtime.control_api
    assert staging.env == "staging" and staging.store is configured.store
    assert configured.env == "dev"  # the configured control is left as it was
    Client("app", "token", "prod")
    assert runtime.control_api.env == "prod"
    assert staging.env == "staging"  # a control read before keeps its env
    Client("app", "token")
    assert runtime.control_api is configured
    fixed = ClientRuntime(configured, env_from_client=False)
    Client("app", "token", "prod")
    assert fixed.control_api is configured and configured.env == "dev"


# -- Version ---------------------------------------------------------------------------------

def test_version_runs_the_newest_implementation(harness) -> None:
    instance_id = harness.dispatch(Greeting("ada"))
    harness.run()
    assert harness.instance(instance_id).version == "GreetingV1"
    assert harness.result(instance_id) == "v1 ada"
    assert Greeting("x").current() is GreetingV1


@pytest.mark.parametrize("version, match", [(TupleVersions, "must return a non-empty list"), (TaskInVersions, "not a Workflow")])
def test_bad_versions_raise_external_error(harness, version: type, match: str) -> None:
    with pytest.raises(ExternalError, match=match):
        version("x").current()
    with pytest.raises(ExternalError, match=match):
        version("x").initial()
    with installed(harness.runtime):
        with pytest.raises(ExternalError, match=match):
            version("x").dispatch()
    assert harness.store.list_instances() == []


def test_bad_versions_executed_by_a_workflow_pause_it(harness) -> None:
    instance_id = harness.dispatch(StartsBadVersion())
    harness.run()
    assert harness.status(instance_id) == "paused"
    error = harness.error(instance_id)
    assert error["class"] == "ExternalError" and "not a Workflow" in error["message"]

"""Hostile input written straight into the store never imports or calls anything.

A dispatched payload, a journal entry, an event payload, a task payload or a property
snapshot naming a class outside the project and this package (``os:system``,
``subprocess:Popen``, ``builtins:eval``, ``posix:system``, or a sentinel module that
writes a file when imported) is refused with a SerializationError: the instance is
paused (a standalone task fails), and the sentinel module is never imported, in the test
process nor in the daemon and its workers.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import os
import sys
from pathlib import Path

import croniter  # noqa: F401  (before the sentinel stubs subprocess: its import asks platform.architecture(), which runs `file`)
import pytest
from flowlib.tasks import Add
from flowlib.workflows import EventFlow, Sequential

from tests.store_helpers import apply
from zenaton_runtime.errors import SerializationError
from zenaton_runtime.instances import new_instance
from zenaton_runtime.models import Entry
from zenaton_runtime.timing.schedules import new_schedule
from zenaton_runtime.store import Batch, NewEntry, open_store
from tests.e2e import Daemon, make_project, zenaton
from tests.harness import flow_project

PROBE = "zen_hostile_probe"
PACKAGE = "zen_hostile_pkg"
CLASSES = ["os:system", "subprocess:Popen", "builtins:eval", "posix:system", f"{PROBE}:Boom",
           f"{PACKAGE}:Boom", f"{PACKAGE}.sub:Boom", "os.path:join", "importlib:import_module"]
SENTINEL = """
import os
with open(os.environ["ZEN_HOSTILE_MARK"], "a") as mark:
    mark.write(f"{__name__} imported in pid {os.getpid()}\\n")

class Boom:
    def __init__(self, *args, **kwargs):
        with open(os.environ["ZEN_HOSTILE_MARK"], "a") as mark:
            mark.write("Boom called\\n")
"""


def hostile(cls: str, tag: str = "obj") -> str:
    """A value in the serializer's own tag format (see runtime/serializer.py) naming ``cls``."""
    node: dict = {"$": tag, "cls": cls, "v": "X" if tag == "enum" else {"command": "touch /tmp/pwned"}}
    if tag == "exc":
        node = {"$": "obj", "cls": cls, "v": {}, "args": ["touch /tmp/pwned"]}
    return json.dumps(node)


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """Modules outside the project, on sys.path, that leave a mark when imported; the mark path."""
    outside = tmp_path / "outside"
    (outside / PACKAGE).mkdir(parents=True)
    (outside / f"{PROBE}.py").write_text(SENTINEL)
    (outside / PACKAGE / "__init__.py").write_text(SENTINEL)
    (outside / PACKAGE / "sub.py").write_text(SENTINEL)
    mark = tmp_path / "imported.mark"
    monkeypatch.syspath_prepend(str(outside))
    monkeypatch.setenv("ZEN_HOSTILE_MARK", str(mark))
    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append("os.system") or 0)
    import subprocess

    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append("Popen"))
    yield mark
    assert not mark.exists(), mark.read_text()
    assert calls == []
    for name in (PROBE, PACKAGE, f"{PACKAGE}.sub"):
        assert name not in sys.modules


def untouched(mark: Path) -> None:
    assert not mark.exists(), mark.read_text()
    assert PROBE not in sys.modules and PACKAGE not in sys.modules


def test_the_sentinel_shows_an_import(tmp_path):
    """The control experiment: importing the probe does leave the mark the tests look for."""
    import subprocess

    (tmp_path / f"{PROBE}.py").write_text(SENTINEL)
    mark = tmp_path / "imported.mark"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "ZEN_HOSTILE_MARK": str(mark)}
    subprocess.run([sys.executable, "-c", f"import {PROBE}"], env=env, check=True, timeout=60)
    assert mark.read_text() == f"{PROBE} imported in pid " + mark.read_text().split()[-1] + "\n"


# -- the codec ------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["obj", "map", "enum", "exc"])
@pytest.mark.parametrize("cls", CLASSES)
def test_the_codec_refuses_classes_outside_the_project(sentinel, cls, tag):
    codec = flow_project().codec
    for text in (hostile(cls, tag), json.dumps({"nested": [1, {"deep": json.loads(hostile(cls, tag))}]})):
        with pytest.raises(SerializationError, match="refusing to load class"):
            codec.decode(text)
    untouched(sentinel)


@pytest.mark.parametrize("name", [5, None, "", ":", "os", ":system", "flowlib.tasks:Add.__init__",
                                  "flowlib.tasks:os", "flowlib.tasks:Task", "zenaton.client:Path",
                                  "flowlib.tasks:Add.__class__.__subclasses__", "../../etc:passwd"])
def test_odd_class_names_are_refused_without_a_crash(sentinel, name):
    with pytest.raises(SerializationError):
        flow_project().codec.decode(json.dumps({"$": "obj", "cls": name, "v": {}}))
    untouched(sentinel)


# -- the engine (in-process) --------------------------------------------------------------


def refused(harness, instance_id: str, status: str = "paused") -> dict:
    assert harness.status(instance_id) == status
    error = harness.error(instance_id)
    assert error["class"] == "SerializationError", error
    assert "refusing to load class" in error["message"] or "not one of the project" in error["message"], error
    return error


@pytest.mark.parametrize("cls", CLASSES[:5])
def test_a_hostile_dispatched_payload_pauses_the_instance(harness, sentinel, cls):
    codec = harness.project.codec
    instance, started, _ = new_instance(codec, Sequential(1), env="dev", now=harness.clock.now())
    instance = dataclasses.replace(instance, data=hostile(cls))
    harness.store.create_instance(instance, dataclasses.replace(started, data=hostile(cls)))
    harness.run()
    refused(harness, instance.id)
    assert not harness.store.tasks_of(instance.id)
    untouched(sentinel)


@pytest.mark.parametrize("cls", CLASSES[:5])
def test_a_hostile_event_payload_pauses_the_instance_and_is_kept(harness, sentinel, cls):
    instance_id = harness.dispatch(EventFlow("target"))
    harness.run()
    harness.store.post(instance_id, "event", "Ping", hostile(cls))
    harness.run()
    refused(harness, instance_id)
    received = [e for e in harness.store.journal(instance_id) if e.type is Entry.EVENT_RECEIVED]
    assert [e.data for e in received] == [hostile(cls)]
    untouched(sentinel)


@pytest.mark.parametrize("cls", CLASSES[:5])
def test_a_hostile_journal_entry_pauses_the_instance(harness, sentinel, cls):
    instance_id = harness.dispatch(Sequential(7))
    batch = Batch()
    batch.append(NewEntry(instance_id, Entry.TASK_SCHEDULED, 1, "Add", json.dumps({"task_id": "forged", "group": None})))
    batch.append(NewEntry(instance_id, Entry.TASK_COMPLETED, 1, "Add", '{"attempt": 1, "result": %s}' % hostile(cls)))
    apply(harness.store, batch)
    harness.run()
    refused(harness, instance_id)
    untouched(sentinel)


@pytest.mark.parametrize("cls", CLASSES[:5])
def test_a_hostile_task_payload_fails_the_task(harness, sentinel, cls):
    codec = harness.project.codec
    instance, started, task = new_instance(codec, Add(1, 2), env="dev", now=harness.clock.now())
    assert task is not None
    harness.store.create_instance(
        dataclasses.replace(instance, data=hostile(cls)), dataclasses.replace(started, data=hostile(cls)),
        dataclasses.replace(task, data=hostile(cls)),
    )
    harness.run()
    refused(harness, instance.id, status="failed")
    untouched(sentinel)


def test_a_hostile_schedule_payload_is_skipped(harness, sentinel):
    schedule = new_schedule(harness.project.codec, Add(1, 2), "* * * * *", env="dev", timezone="UTC",
                            now=harness.clock.now())
    harness.store.add_schedule(dataclasses.replace(schedule, data=hostile(f"{PROBE}:Boom"),
                                                   next_fire=harness.clock.now() - 1))
    harness.run()
    assert harness.store.list_instances() == []
    (stored,) = harness.store.list_schedules()
    assert stored.next_fire > harness.clock.now()  # the fire was skipped, not retried in a loop
    untouched(sentinel)


def test_hostile_properties_are_refused_by_find(harness, sentinel):
    instance_id = harness.dispatch(Sequential(3))
    batch = Batch()
    batch.update_instance(instance_id, properties=hostile(f"{PROBE}:Boom"))
    apply(harness.store, batch)
    with pytest.raises(SerializationError, match="refusing to load class"):
        harness.runtime.find(Sequential, "seq-3")
    with pytest.raises(SerializationError):
        harness.control.properties(harness.instance(instance_id))
    untouched(sentinel)


# -- the daemon and its workers (real processes) ----------------------------------------------


def test_the_daemon_refuses_hostile_records_and_imports_nothing(tmp_path):
    root = make_project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{PROBE}.py").write_text(SENTINEL)
    mark = tmp_path / "imported.mark"
    probe = f"{PROBE}:Boom"
    store = open_store(f"sqlite:///{root}/.zenaton/zenaton.db")
    codec = flow_project().codec
    try:
        workflow, started, _ = new_instance(codec, Sequential(1), env="dev", now=store.now())
        store.create_instance(dataclasses.replace(workflow, data=hostile(probe)),
                              dataclasses.replace(started, data=hostile(probe)))
        task, started, record = new_instance(codec, Add(1, 2), env="dev", now=store.now())
        assert record is not None
        store.create_instance(dataclasses.replace(task, data=hostile(probe)),
                              dataclasses.replace(started, data=hostile(probe)), dataclasses.replace(record, data=hostile(probe)))
        listener, started, _ = new_instance(codec, EventFlow("listener"), env="dev", now=store.now())
        store.create_instance(listener, started)
        store.post(listener.id, "event", "Ping", hostile(probe, "exc"))
        forged, started, _ = new_instance(codec, Sequential(2), env="dev", now=store.now())
        store.create_instance(forged, started)
        batch = Batch()
        batch.append(NewEntry(forged.id, Entry.TASK_SCHEDULED, 1, "Add", json.dumps({"task_id": "forged", "group": None})))
        batch.append(NewEntry(forged.id, Entry.TASK_COMPLETED, 1, "Add", '{"attempt": 1, "result": %s}' % hostile(probe)))
        apply(store, batch)
    finally:
        store.close()

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(outside), os.environ.get("PYTHONPATH")])),
           "ZEN_HOSTILE_MARK": str(mark)}
    daemon = Daemon(root, env=env).started()
    try:
        daemon.expect(rf"Add {task.id[:8]}: failed with SerializationError")
        for instance in (workflow, listener, forged):
            daemon.wait_until(lambda: status(root, instance.id) != "running", what=f"{instance.name} stopped")
    finally:
        assert daemon.stop() == 0
    assert not mark.exists(), mark.read_text()
    assert "Traceback" not in "\n".join(daemon.log)
    for instance, want in ((workflow, "paused"), (listener, "paused"), (forged, "paused"), (task, "failed")):
        view = json.loads(zenaton(root, "inspect", instance.id, "--json").stdout)  # shows it, imports nothing
        assert view["status"] == want, view
        assert view["error"]["class"] == "SerializationError", view["error"]
        assert PROBE in view["error"]["message"]
    assert not mark.exists()


def status(root: Path, instance_id: str) -> str:
    store = open_store(f"sqlite:///{root}/.zenaton/zenaton.db")
    try:
        instance = store.get_instance(instance_id)
        assert instance is not None
        return instance.status.value
    finally:
        store.close()


# -- no pickle anywhere -----------------------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "jsonpickle"}


def test_no_pickle_in_the_engine_the_sdk_or_the_cli():
    repo = Path(__file__).resolve().parent.parent
    offenders = []
    files = [p for package in ("zenaton", "runtime", "zenaton_cli") for p in sorted((repo / package).rglob("*.py"))]
    assert len(files) > 30
    for path in files:
        source = path.read_text()
        for node in ast.walk(ast.parse(source, str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value]  # __import__("pickle"), importlib.import_module("pickle")
            for name in names:
                if name.partition(".")[0] in UNSAFE_MODULES:
                    offenders.append(f"{path.relative_to(repo)}:{node.lineno}: {name}")
        for line_number, line in enumerate(source.splitlines(), 1):
            code = line.split("#", 1)[0]
            if "pickle" in code and "never pickle" not in line.lower():
                offenders.append(f"{path.relative_to(repo)}:{line_number}: {line.strip()}")
    assert offenders == []

"""The real daemon as a subprocess: scripts, crashes, restarts, stops."""
from __future__ import annotations

import json
import signal

import pytest

from tests.e2e import Daemon, Signals, make_project, python, zenaton

SCRIPT_HEADER = "import boot\nfrom zenaton.client import Client\nClient('e2e', 'token', 'dev')\n"


def journal_kinds(root, instance_id):
    view = json.loads(zenaton(root, "inspect", instance_id, "--json").stdout)
    return view


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_plain_script_dispatch_find_pause_resume(project):
    daemon = Daemon(project).started()
    try:
        daemon.expect("2 workers ready")  # once both loaded the project (make_project: concurrency 2)
        python(project, SCRIPT_HEADER + "from flowlib.workflows import EventFlow\nEventFlow('ada').dispatch()\n")
        daemon.expect(r"EventFlow \w+: waiting for Ping")
        found = python(project, SCRIPT_HEADER + (
            "from flowlib.workflows import EventFlow\n"
            "flow = EventFlow.where_id('ada').find()\n"
            "print(type(flow).__name__, flow.name, flow.pings)\n"
            "EventFlow.where_id('ada').pause()\n"
        ))
        assert found.stdout.strip() == "EventFlow ada []"
        daemon.expect(r"EventFlow \w+: paused")
        python(project, SCRIPT_HEADER + (
            "from flowlib.workflows import EventFlow\nfrom flowlib.tasks import Ping\n"
            "EventFlow.where_id('ada').send_event(Ping('hello'))\n"
            "EventFlow.where_id('ada').resume()\n"
        ))
        daemon.expect(r"EventFlow \w+: completed")
        listing = json.loads(zenaton(project, "list", "--json").stdout)
        (item,) = [i for i in listing if i["name"] == "EventFlow"]
        view = json.loads(zenaton(project, "inspect", item["id"], "--json").stdout)
        assert view["status"] == "completed"
        assert view["properties"]["pings"] == ["hello"]
        kinds = [step["kind"] for step in view["steps"]]
        assert kinds == ["task", "wait", "pause", "event", "resume", "task", "completed"]
    finally:
        assert daemon.stop() == 0


def test_sigkill_mid_task_then_restart_reruns_only_the_task_in_flight(project):
    signals = Signals(project)
    (project / "gates" / "crash-a").touch()  # the first task may finish; the second blocks
    daemon = Daemon(project).started()
    instance_id = zenaton(project, "dispatch", "Gated", "crash").stdout.strip()
    signals.expect("start crash-a")
    signals.expect("start crash-b")
    daemon.expect(r"task Slow completed \(position 1\)")
    daemon.kill9()

    restarted = Daemon(project)
    restarted.expect(r"daemon started .* 1 interrupted task\(s\) re-queued")
    signals.expect("start crash-b")  # the task in flight runs again
    (project / "gates" / "crash-b").touch()
    restarted.expect(f"Gated {instance_id[:8]}: completed")
    assert restarted.stop() == 0
    signals.close()

    log = (project / "flow.log").read_text().splitlines()
    assert log.count("Slow start crash-a") == 1 and log.count("Slow end crash-a") == 1
    assert log.count("Slow start crash-b") == 2 and log.count("Slow end crash-b") == 1
    assert log.count("Add 1 1") == 1
    view = journal_kinds(project, instance_id)
    assert view["status"] == "completed"
    assert [(s["position"], s["status"], s["attempts"]) for s in view["steps"] if s["kind"] == "task"] == [
        (1, "completed", 1), (2, "completed", 1), (3, "completed", 1),
    ]


def test_second_daemon_on_the_same_store_is_refused(project):
    daemon = Daemon(project).started()
    try:
        second = zenaton(project, "start", check=False)
        assert second.returncode == 1
        assert f"already running on this store (pid {daemon.process.pid})" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert daemon.stop() == 0


def test_sigterm_lets_the_running_task_finish_and_loses_nothing(project):
    signals = Signals(project)
    daemon = Daemon(project).started()
    instance_id = zenaton(project, "dispatch", "Gated", "term").stdout.strip()
    (project / "gates" / "term-a").touch()
    signals.expect("start term-a")
    signals.expect("start term-b")
    daemon.process.send_signal(signal.SIGTERM)
    daemon.expect("stopping: waiting for running tasks")
    (project / "gates" / "term-b").touch()
    assert daemon.stop() == 0
    assert any("daemon stopped (0 task(s) re-queued)" in line for line in daemon.log)

    view = journal_kinds(project, instance_id)
    assert view["status"] == "running"
    tasks = [(s["position"], s["status"]) for s in view["steps"] if s["kind"] == "task"]
    assert (2, "completed") in tasks  # the attempt finished during the grace period and was recorded

    restarted = Daemon(project).started()
    restarted.expect(f"Gated {instance_id[:8]}: completed")
    assert restarted.stop() == 0
    signals.close()
    log = (project / "flow.log").read_text().splitlines()
    assert log.count("Slow start term-b") == 1


def test_worker_killed_mid_attempt_counts_as_a_failed_attempt(project):
    signals = Signals(project)
    daemon = Daemon(project).started()
    try:
        zenaton(project, "dispatch", "Slow", "victim")
        signals.expect("start victim")
        pids = [int(p) for p in open("/proc/%d/task/%d/children" % (daemon.process.pid, daemon.process.pid)).read().split()]
        for pid in pids:
            try:
                cmdline = open(f"/proc/{pid}/cmdline").read()
            except FileNotFoundError:
                continue
            if "zenaton_runtime.pool.worker" in cmdline:
                import os

                os.kill(pid, signal.SIGKILL)
        daemon.expect(r"Slow \w+: failed with TaskCrashedError")
        # The daemon keeps serving others.
        quick = zenaton(project, "dispatch", "Add", "2", "3").stdout.strip()
        daemon.expect(f"Add {quick[:8]}: completed")
    finally:
        assert daemon.stop() == 0
        signals.close()


def test_the_daemon_publishes_its_record_in_the_store_while_it_runs(project):
    from zenaton_runtime.store.sqlite import SQLiteStore

    daemon = Daemon(project).started()  # the record is written before the "started" line
    store = SQLiteStore(project / ".zenaton" / "zenaton.db")  # as a dashboard in another process reads it
    try:
        (record,) = store.daemons()
        assert (record.pid, record.workers, record.env, record.steps) == (daemon.process.pid, 2, "dev", 0)
        status = json.loads(zenaton(project, "status", "--json").stdout)
        assert status["running"] is True and status["pid"] == daemon.process.pid  # the fields it had
        (shown,) = status["daemons"]
        assert (shown["id"], shown["pid"], shown["alive"], shown["workers"]) == (record.id, record.pid, True, 2)
        assert "alive" in zenaton(project, "status").stdout

        instance_id = zenaton(project, "dispatch", "Sequential", "1").stdout.strip()
        daemon.expect(f"Sequential {instance_id[:8]}: completed")
        daemon.wait_until(lambda: store.daemons()[0].steps >= 3, what="a heartbeat with the workflow's steps")
        (record,) = store.daemons()
        stats = json.loads(record.stats)
        assert stats["task_attempts"] == {"completed": 2, "failed": 0, "retried": 0}
        assert stats["commit_seconds"]["count"] == stats["commits"] >= 3
    finally:
        assert daemon.stop() == 0
    assert store.daemons() == []  # a clean stop removes it
    store.close()

"""A real `zenaton start --dashboard` on a PostgreSQL store: the CLI, a plain script, a task
worker (which sends an event from inside a task) and the dashboard all reach the daemon through
the database alone."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e import Daemon, Signals, make_project, python, zenaton
from tests.postgres_server import pg_server, pg_url  # noqa: F401  (fixtures: a server, a fresh database)

SCRIPT_HEADER = "import boot\nfrom zenaton.client import Client\nClient('e2e', 'token', 'dev')\n"


def cli_json(root: Path, *args: str) -> object:
    return json.loads(zenaton(root, *args, "--json").stdout)


def http(url: str, token: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Path:
    return make_project(tmp_path, store_url=pg_url)


def test_the_daemon_the_cli_a_script_and_the_dashboard_on_one_postgresql_store(project: Path, pg_url: str) -> None:
    daemon = Daemon(project, "--dashboard", "--dashboard-port", "0")
    address = re.search(r"Zenaton dashboard: (http://\S+)", daemon.expect("Zenaton dashboard: "))[1]  # type: ignore[index]
    base, token = address.partition("/?")[0], address.partition("token=")[2]
    daemon.started()
    stopped = False
    try:
        assert "store postgresql://" in daemon.log[-1] and not (project / ".zenaton" / "zenaton.db").exists()
        status = cli_json(project, "status")
        assert status["running"] is True and status["store"] == pg_url  # type: ignore[index]

        # from the CLI: a workflow with a child, tasks in the daemon's workers
        parent = cli_json(project, "dispatch", "Parent")["id"]  # type: ignore[index]
        daemon.expect(f"Parent {parent[:8]}: completed")
        view = cli_json(project, "inspect", parent)
        assert view["status"] == "completed"  # type: ignore[index]

        # a task (in a worker process, with a connection of its own) sends its workflow an event
        signaller = cli_json(project, "dispatch", "Signaller", "sig")["id"]  # type: ignore[index]
        daemon.expect(f"Signaller {signaller[:8]}: completed")
        assert "from task" in json.dumps(cli_json(project, "inspect", signaller)["steps"][-1])  # type: ignore[index]

        # from a plain script, as a user would: dispatch, then find it by its custom id
        python(project, SCRIPT_HEADER + "from flowlib.workflows import EventFlow\nEventFlow('ada').dispatch()\n")
        daemon.expect(r"EventFlow \w+: waiting for Ping")
        found = python(project, SCRIPT_HEADER + (
            "from flowlib.workflows import EventFlow\n"
            "flow = EventFlow.where_id('ada').find()\n"
            "print(type(flow).__name__, flow.name, flow.pings)\n"
        ))
        assert found.stdout.strip() == "EventFlow ada []"
        (listed,) = [i for i in cli_json(project, "list") if i["name"] == "EventFlow"]  # type: ignore[union-attr]
        flow = listed["id"]

        # pause, an event while paused, resume: each waits until the daemon applied it
        assert cli_json(project, "pause", "ada")["status"] == "paused"  # type: ignore[index]
        assert cli_json(project, "send-event", "ada", "Ping", '"hello"')["applied"] is True  # type: ignore[index]
        assert cli_json(project, "resume", flow[:8])["status"] in ("running", "completed")  # type: ignore[index]
        daemon.expect(f"EventFlow {flow[:8]}: completed")
        view = cli_json(project, "inspect", flow)
        assert view["status"] == "completed" and view["properties"]["pings"] == ["hello"]  # type: ignore[index]
        kinds = [step["kind"] for step in view["steps"]]  # type: ignore[index]
        assert kinds == ["task", "wait", "pause", "event", "resume", "task", "completed"]

        # the dashboard: its pages and API read the database, its actions post as the CLI does
        waiting = cli_json(project, "dispatch", "EventFlow", "bea")["id"]  # type: ignore[index]
        daemon.expect(f"EventFlow {waiting[:8]}: waiting for Ping")
        code, body = http(f"{base}/api/instances/{waiting}/pause", token, "POST")
        assert code == 200 and json.loads(body)["status"] == "paused", body
        code, page = http(f"{base}/instances/{waiting}", token)
        assert code == 200 and b'id="status">paused<' in page
        code, body = http(f"{base}/api/instances/{waiting}/resume", token, "POST")
        assert code == 200 and json.loads(body)["status"] == "running", body
        code, body = http(f"{base}/api/instances", token)
        assert code == 200 and waiting in body.decode()
        code, metrics = http(f"{base}/metrics", token)
        assert code == 200 and b"EventFlow" in metrics
        assert cli_json(project, "send-event", waiting, "Ping", '"dash"')["applied"] is True  # type: ignore[index]
        daemon.expect(f"EventFlow {waiting[:8]}: completed")

        listing = cli_json(project, "list")
        assert {(i["name"], i["status"]) for i in listing} >= {  # type: ignore[union-attr]
            ("Parent", "completed"), ("EventFlow", "completed"), ("Child", "completed"),
        }
        status = cli_json(project, "status")
        assert status["instances"]["completed"] >= 3  # type: ignore[index]
        assert [d["env"] for d in status["daemons"]] == ["dev"]  # type: ignore[index]

        # a second daemon shares the database: both are listed; it stops cleanly, the first carries on
        other = make_project(project.parent / "other", store_url=pg_url)
        second = Daemon(other).started()
        status = cli_json(project, "status")
        assert sorted(d["pid"] for d in status["daemons"]) == sorted([daemon.process.pid, second.process.pid])  # type: ignore[index]
        assert second.stop() == 0
        assert [d["pid"] for d in cli_json(project, "status")["daemons"]] == [daemon.process.pid]  # type: ignore[index]

        assert "daemon stopped" in zenaton(project, "stop").stdout
        stopped = True
    finally:
        if not stopped and daemon.process.poll() is None:
            daemon.stop()
    assert daemon.process.wait(timeout=30) == 0
    with pytest.raises(urllib.error.URLError):  # the dashboard stopped with the daemon
        urllib.request.urlopen(f"{base}/", timeout=5)
    status = cli_json(project, "status")
    assert status["running"] is False and status["daemons"] == []  # type: ignore[index]


def test_a_daemon_killed_mid_task_restarts_on_the_database_and_reruns_only_that_task(project: Path) -> None:
    """kill -9: the next daemon on this machine finds the dead one's process gone, ends its lease,
    takes its instance over (re-queueing the task that was running), and the instance completes."""
    signals = Signals(project)
    (project / "gates" / "crash-a").touch()  # the first task may finish; the second blocks
    daemon = Daemon(project).started()
    instance_id = zenaton(project, "dispatch", "Gated", "crash").stdout.strip()
    signals.expect("start crash-a")
    signals.expect("start crash-b")
    daemon.expect(r"task Slow completed \(position 1\)")
    daemon.kill9()

    restarted = Daemon(project)
    restarted.expect(r"took over 1 instance\(s\) from daemons whose lease ran out; 1 task\(s\) in flight re-queued")
    signals.expect("start crash-b")  # the task in flight runs again
    (project / "gates" / "crash-b").touch()
    restarted.expect(f"Gated {instance_id[:8]}: completed")
    assert restarted.stop() == 0
    signals.close()
    log = (project / "flow.log").read_text().splitlines()
    assert log.count("Slow start crash-a") == 1 and log.count("Slow start crash-b") == 2
    view = cli_json(project, "inspect", instance_id)
    assert [(s["position"], s["status"], s["attempts"]) for s in view["steps"] if s["kind"] == "task"] == [  # type: ignore[index]
        (1, "completed", 1), (2, "completed", 1), (3, "completed", 1),
    ]


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, store_url="postgresql://zen:secret@127.0.0.1:1/shop")
    result = zenaton(project, "list", check=False)
    assert result.returncode != 0
    assert "cannot connect to the PostgreSQL store at 127.0.0.1:1/shop" in result.stderr
    assert "Traceback" not in result.stderr and "secret" not in result.stderr

"""A real `zenaton start` on a PostgreSQL store: the CLI, a plain script and task workers
(which dispatch from inside a task) all reach the daemon through the database alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import Daemon, make_project, python, zenaton
from tests.postgres_server import pg_server, pg_url  # noqa: F401  (fixtures: a server, a fresh database)

SCRIPT_HEADER = "import boot\nfrom zenaton.client import Client\nClient('e2e', 'token', 'dev')\n"


def cli_json(root: Path, *args: str) -> object:
    return json.loads(zenaton(root, *args, "--json").stdout)


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Path:
    return make_project(tmp_path, store_url=pg_url)


def test_the_daemon_the_cli_and_a_script_on_one_postgresql_store(project: Path, pg_url: str) -> None:
    daemon = Daemon(project).started()
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

        listing = cli_json(project, "list")
        assert {(i["name"], i["status"]) for i in listing} >= {  # type: ignore[union-attr]
            ("Parent", "completed"), ("EventFlow", "completed"), ("Child", "completed"),
        }
        status = cli_json(project, "status")
        assert status["instances"]["completed"] >= 3  # type: ignore[index]
        assert [d["env"] for d in status["daemons"]] == ["dev"]  # type: ignore[index]

        # a second daemon on the same database is refused, and the first carries on
        other = make_project(project.parent / "other", store_url=pg_url)
        second = Daemon(other)
        assert second.process.wait(timeout=60) != 0
        second.stop()
        assert any("another zenaton daemon is running" in line for line in second.log), second.log

        assert "daemon stopped" in zenaton(project, "stop").stdout
        stopped = True
    finally:
        if not stopped and daemon.process.poll() is None:
            daemon.stop()
    assert daemon.process.wait(timeout=30) == 0
    status = cli_json(project, "status")
    assert status["running"] is False and status["daemons"] == []  # type: ignore[index]


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, store_url="postgresql://zen:secret@127.0.0.1:1/shop")
    result = zenaton(project, "list", check=False)
    assert result.returncode != 0
    assert "cannot connect to the PostgreSQL store at 127.0.0.1:1/shop" in result.stderr
    assert "Traceback" not in result.stderr and "secret" not in result.stderr

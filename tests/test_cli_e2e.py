"""The installed `zenaton` executable against a real daemon, in a project made by `zenaton init`."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e import Daemon, zenaton

EXTRA = '''
import os
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.tasks.wait import Wait
from zenaton.traits.zenatonable import Zenatonable

from events.user_activated import UserActivated


class Remind(Workflow, Zenatonable):
    def __init__(self, who):
        self.who = who
        self.reminded = 0

    def handle(self):
        while Wait(UserActivated).days(1).execute() is None:
            self.reminded += 1
        return Charge(self.who).execute()

    def id(self):
        return self.who


class Charge(Task, Zenatonable):
    def __init__(self, who):
        self.who = who

    def handle(self):
        if os.path.exists("declined"):
            raise ValueError(f"card of {self.who} declined")
        return f"charged {self.who}"
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    assert zenaton(tmp_path, "init", "app").returncode == 0
    (root / "workflows" / "remind.py").write_text(EXTRA)
    with (root / "boot.py").open("a") as boot:
        boot.write("from workflows.remind import Charge, Remind  # noqa: F401\n")
    return root


def cli_json(root: Path, *args: str) -> dict:
    return json.loads(zenaton(root, *args, "--json").stdout)


def test_the_whole_command_line_against_a_daemon(app: Path) -> None:
    daemon = Daemon(app).started()
    stopped = False
    try:
        assert cli_json(app, "status")["running"] is True

        welcome = cli_json(app, "dispatch", "WelcomeFlow", '{"email": "ada@example.com", "slack_id": "U1"}')["id"]
        daemon.expect(f"WelcomeFlow {welcome[:8]}: completed")
        view = cli_json(app, "inspect", welcome[:8])
        assert view["status"] == "completed"
        assert [s["kind"] for s in view["steps"]] == ["task", "wait", "task", "completed"]
        assert "sending the welcome email" in zenaton(app, "inspect", welcome, "--output").stdout

        remind = cli_json(app, "dispatch", "Remind", "bob")["id"]
        daemon.expect(f"Remind {remind[:8]}: waiting for UserActivated")
        assert cli_json(app, "pause", "bob") == {"id": remind, "action": "pause", "applied": True, "status": "paused"}
        assert cli_json(app, "resume", "bob")["status"] == "running"
        assert cli_json(app, "find", "Remind", "bob")["properties"] == {"who": "bob", "reminded": 0}

        (app / "declined").touch()
        event = cli_json(app, "send-event", "bob", "UserActivated", "--arg", "source=cli")
        assert event["applied"] is True
        daemon.expect(f"Remind {remind[:8]}: paused by error ValueError")
        (group,) = json.loads(zenaton(app, "errors", "--json").stdout)
        assert (group["class"], group["task"], group["ids"]) == ("ValueError", "Charge", [remind])
        (app / "declined").unlink()
        assert cli_json(app, "retry", remind)["applied"] is True
        daemon.expect(f"Remind {remind[:8]}: completed")
        assert json.loads(zenaton(app, "errors", "--json").stdout) == []

        doomed = cli_json(app, "dispatch", "Remind", "carol")["id"]
        daemon.expect(f"Remind {doomed[:8]}: waiting")
        assert cli_json(app, "kill", doomed)["status"] == "killed"

        counts = cli_json(app, "status")["instances"]
        assert (counts["completed"], counts["killed"]) == (2, 1)
        assert "daemon stopped" in zenaton(app, "stop").stdout
        stopped = True  # `zenaton stop` returns once the lock is free; the process may still be exiting
    finally:
        if not stopped and daemon.process.poll() is None:
            daemon.stop()
    assert daemon.process.wait(timeout=30) == 0
    assert cli_json(app, "status")["running"] is False


def test_listen_is_the_original_agents_command_line(app: Path) -> None:
    (app / "zenaton.toml").unlink()
    (app / "custom.env").write_text("ZENATON_APP_ENV=staging\n")
    daemon = Daemon(app, "--boot=boot.py", "--env=custom.env", "--app_id=legacy", "--api_token=t0k3n", command="listen")
    daemon.expect(r"daemon started .* env staging")
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.stop() == 0


def test_listen_with_a_missing_env_file_is_a_clear_error(app: Path) -> None:
    result = zenaton(app, "listen", "--boot=boot.py", "--env=missing.env", check=False)
    assert result.returncode == 1
    assert "env file not found" in result.stderr and "Traceback" not in result.stderr

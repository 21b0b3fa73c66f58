"""Hot reload with a real daemon subprocess: edits are picked up, broken code is not.

Waiting is event-driven: on the daemon's log and on the FIFO the test tasks write to.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import Daemon, Signals, make_project, python, zenaton

# A plain script, as a user's app would dispatch: it imports only what it needs, so it
# works while another file of the project is broken.
SCRIPT = "from zenaton.client import Client\nClient('e2e', 'token', 'dev')\nfrom flowlib.tasks import {name}\n"
ADD = "return self.a + self.b"
RELOADED = r"reloaded the project \((\d+) files? changed\)"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, concurrency=1)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def view(root: Path, prefix: str) -> dict[str, Any]:
    (item,) = [i for i in json.loads(zenaton(root, "list", "--json").stdout) if i["id"].startswith(prefix)]
    return json.loads(zenaton(root, "inspect", item["id"], "--json").stdout)


def result_of(daemon: Daemon, root: Path, name: str) -> Any:
    """The result of the next `name` task the daemon reports completed."""
    line = daemon.expect(rf"{name} (\w+): completed")
    match = re.search(rf"{name} (\w+): completed", line)
    assert match is not None
    (step,) = view(root, match[1])["steps"]
    assert (step["status"], step["attempts"]) == ("completed", 1)
    return step["result"]


def dispatch(root: Path, name: str, *args: object) -> None:
    python(root, SCRIPT.format(name=name) + f"{name}(*{args!r}).dispatch()\n")


def test_an_edited_task_is_used_after_the_running_attempt_finishes_on_the_old_code(project: Path) -> None:
    signals = Signals(project)
    daemon = Daemon(project).started()
    try:
        assert "; watching for changes" in daemon.log[-1]
        zenaton(project, "dispatch", "Add", "2", "3")
        assert result_of(daemon, project, "Add") == 5

        dispatch(project, "Slow", "held")  # the only worker is busy with it during the reload
        signals.expect("start held")
        edit(project / "flowlib" / "tasks.py", ADD, ADD + " + 1000")
        assert daemon.expect(RELOADED).endswith("reloaded the project (1 file changed)")
        zenaton(project, "dispatch", "Add", "2", "3")  # queued until the worker is free
        (project / "gates" / "held").touch()
        assert result_of(daemon, project, "Slow") == "held"  # finished, not failed, not re-run
        assert result_of(daemon, project, "Add") == 1005
    finally:
        assert daemon.stop() == 0
        signals.close()
    log = (project / "flow.log").read_text().splitlines()
    assert log.count("Slow start held") == 1


def test_a_syntax_error_is_reported_and_the_previous_code_keeps_running(tmp_path: Path) -> None:
    project = make_project(tmp_path, concurrency=2)
    signals = Signals(project)
    daemon = Daemon(project).started()
    extra = project / "flowlib" / "extra.py"
    good = extra.read_text()
    try:
        dispatch(project, "Add", 2, 3)
        assert result_of(daemon, project, "Add") == 5

        extra.write_text(good + "\n\ndef broken(:\n    pass\n")
        edit(project / "flowlib" / "tasks.py", ADD, ADD + " + 2000")  # not applied while extra.py is broken
        line = daemon.expect(r"reload skipped")
        assert re.search(r"reload skipped: syntax error in flowlib/extra\.py, line \d+: .+; "
                         r"still running the previous code$", line), line

        dispatch(project, "Slow", "busy")  # takes the warm worker ...
        signals.expect("start busy")
        dispatch(project, "Add", 2, 3)  # ... so this one starts a new worker, while extra.py is broken
        assert result_of(daemon, project, "Add") == 5
        (project / "gates" / "busy").touch()
        assert result_of(daemon, project, "Slow") == "busy"

        extra.write_text(good)  # fixed: both changes are loaded now
        daemon.expect(RELOADED)
        dispatch(project, "Add", 2, 3)
        assert result_of(daemon, project, "Add") == 2005
        assert daemon.process.poll() is None
    finally:
        assert daemon.stop() == 0
        signals.close()


def test_an_instance_whose_journal_no_longer_matches_is_paused_then_retried(project: Path) -> None:
    daemon = Daemon(project).started()
    workflows = project / "flowlib" / "workflows.py"
    try:
        zenaton(project, "dispatch", "EventFlow", "ada")
        daemon.expect(r"EventFlow \w+: waiting for Ping")
        edit(workflows, 'first = Echo("before").execute()', "first = Add(1, 0).execute()")
        daemon.expect(RELOADED)
        zenaton(project, "send-event", "ada", "Ping", "hello")
        daemon.expect(r"EventFlow \w+: paused by error NonDeterminismError")
        paused = json.loads(zenaton(project, "inspect", "ada", "--json").stdout)
        assert paused["status"] == "paused"
        error = paused["error"]
        assert error["class"] == "NonDeterminismError"
        assert (error["position"], error["recorded"], error["requested"]) == (1, "task Echo", "task Add")

        edit(workflows, "first = Add(1, 0).execute()", 'first = Echo("before").execute()')
        daemon.expect(RELOADED)
        zenaton(project, "retry", "ada")
        daemon.expect(r"EventFlow \w+: completed")
        done = json.loads(zenaton(project, "inspect", "ada", "--json").stdout)
        assert done["status"] == "completed" and done["properties"]["pings"] == ["hello"]
    finally:
        assert daemon.stop() == 0


@pytest.mark.parametrize("how", ["flag", "config"])
def test_reload_can_be_turned_off(project: Path, how: str) -> None:
    if how == "config":
        with (project / "zenaton.toml").open("a") as config:
            config.write("reload = false\n")  # [daemon] is the file's last table
    daemon = Daemon(project, *(["--no-reload"] if how == "flag" else [])).started()
    try:
        assert "watching for changes" not in daemon.log[-1]
        zenaton(project, "dispatch", "Add", "2", "3")
        assert result_of(daemon, project, "Add") == 5
        edit(project / "flowlib" / "tasks.py", ADD, ADD + " + 1000")
        zenaton(project, "dispatch", "Add", "2", "3")
        assert result_of(daemon, project, "Add") == 5  # the code the daemon started with
    finally:
        assert daemon.stop() == 0
    assert not any(re.search(r"reloaded the project|reload (skipped|failed)", line) for line in daemon.log)

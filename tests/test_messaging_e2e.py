"""The real daemon: one workflow signals another from inside handle()."""
from __future__ import annotations

import json

import pytest

from tests.e2e import Daemon, make_project, python, zenaton

SCRIPT = (
    "import boot\nfrom zenaton.client import Client\nClient('e2e', 'token', 'dev')\n"
    "from flowlib.messaging import Caller, Mailbox\n"
)


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_a_workflow_signals_another_through_the_daemon(project):
    daemon = Daemon(project).started()
    try:
        python(project, SCRIPT + "Mailbox('box').dispatch()\n")
        daemon.expect(r"Mailbox \w+: waiting for Knock")
        plan = [["send", "box", "hello"], ["find", "box"], ["pause", "nobody"], ["send", "box", "stop"]]
        python(project, SCRIPT + f"Caller({plan!r}, name='e2e').dispatch()\n")
        daemon.expect(r"Caller \w+: event Knock to Mailbox 'box' \(\w+\) \(position 1\)")
        daemon.expect(r"Caller \w+: completed")
        daemon.expect(r"Mailbox \w+: completed")
        listing = json.loads(zenaton(project, "list", "--json").stdout)
        ids = {item["name"]: item["id"] for item in listing}
        box = json.loads(zenaton(project, "inspect", ids["Mailbox"], "--json").stdout)
        assert box["status"] == "completed" and box["properties"]["received"] == ["hello", "stop"]
        caller = json.loads(zenaton(project, "inspect", ids["Caller"], "--json").stdout)
        calls = [s for s in caller["steps"] if s["position"] is not None]
        assert [(s["kind"], s["status"]) for s in calls] == [
            ("send_event", "completed"), ("find", "completed"), ("control", "refused"), ("send_event", "completed"),
        ]
        assert calls[0]["target"] == {"name": "Mailbox", "custom_id": "box", "id": ids["Mailbox"]}
        assert calls[2]["error"]["class"] == "UnknownInstanceError"
        answers = caller["properties"]["answers"]
        assert answers[0] == "sent" and answers[1][0] == "Mailbox" and answers[2][0] == "UnknownInstanceError"
        table = zenaton(project, "inspect", ids["Caller"]).stdout
        assert "send_event" in table and f"Knock → {ids['Mailbox'][:8]}" in table and "Mailbox (box)" in table
        log = (project / "flow.log").read_text().splitlines()
        assert log.count("Mailbox box got hello") == 1 and log.count("Mailbox box got stop") == 1
    finally:
        assert daemon.stop() == 0

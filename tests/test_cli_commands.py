"""find / where-id, send-event, errors and retry --all, in-process against a real SQLite store."""
from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import ADA, Engineer, dispatch, fails, invoke, run_json

FAILING_TASK = '''
import os
from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class ChargeCard(Task, Zenatonable):
    def __init__(self, amount):
        self.amount = amount

    def handle(self):
        if os.path.exists(os.path.join(os.path.dirname(__file__), "..", "declined")):
            raise ValueError(f"card declined for {self.amount}")
        return self.amount
'''


def add_failing_task(project: Path) -> None:
    (project / "tasks" / "charge_card.py").write_text(FAILING_TASK)
    with (project / "boot.py").open("a") as boot:
        boot.write("from tasks.charge_card import ChargeCard  # noqa: F401\n")
    (project / "declined").touch()


def test_find_shows_current_properties(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    view = run_json(project, "find", "WelcomeFlow", "ada@example.com")
    assert view["id"] == instance_id and view["status"] == "running"
    assert view["properties"]["email_receipt"] == {"to": "ada@example.com", "status": "sent"}
    assert "steps" not in view
    assert run_json(project, "where-id", "WelcomeFlow", "ada@example.com")["id"] == instance_id
    assert "ada@example.com" in invoke("--project", project, "find", "WelcomeFlow", "ada@example.com").stdout
    fails(project, "find", "WelcomeFlow", "nobody@example.com", match="no WelcomeFlow instance with custom id")


def test_send_event_changes_the_workflow(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    reply = run_json(project, "send-event", "ada@example.com", "UserActivated", '"mobile"')
    assert reply["action"] == "event UserActivated" and reply["applied"] is False
    engine.run()
    view = run_json(project, "inspect", instance_id)
    assert view["status"] == "completed"
    assert view["properties"]["activated"] is True
    event = [s for s in view["steps"] if s["kind"] == "event"][0]
    assert event["name"] == "UserActivated" and event["result"]["source"] == "mobile"
    wait = [s for s in view["steps"] if s["kind"] == "wait"][0]
    assert wait["status"] == "completed"


def test_send_event_keyword_arguments_and_refusals(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    invoke("--project", project, "send-event", instance_id, "UserActivated", "--arg", "source=cli")
    engine.run()
    assert run_json(project, "find", "WelcomeFlow", "ada@example.com")["status"] == "completed"
    fails(project, "send-event", instance_id, "UserActivated", match="was not delivered")
    fails(project, "send-event", instance_id, "UserActivatd", match="did you mean UserActivated")


def test_errors_groups_failures_and_retry_all_retries_them(project: Path) -> None:
    add_failing_task(project)
    first = dispatch(project, "ChargeCard", "10")
    second = dispatch(project, "ChargeCard", "20")
    engine = Engineer(project)
    try:
        engine.run()
        assert run_json(project, "list", "--status", "failed")[0]["name"] == "ChargeCard"
        (group,) = run_json(project, "errors")
        assert (group["class"], group["task"], group["count"]) == ("ValueError", "ChargeCard", 2)
        assert set(group["ids"]) == {first, second}
        assert group["message"].startswith("card declined for")
        assert "ValueError" in invoke("--project", project, "errors").stdout
        (project / "declined").unlink()
        assert set(run_json(project, "retry", "--all")["retried"]) == {first, second}
        engine.run()
        assert {i["status"] for i in run_json(project, "list")} == {"completed"}
        assert run_json(project, "errors") == []
        assert "no errors" in invoke("--project", project, "errors").stdout
    finally:
        engine.close()


def test_retry_needs_an_id_or_all(project: Path) -> None:
    result = invoke("--project", project, "retry", code=2)
    assert "give an instance ID or --all" in result.output


def test_schedule_schedules_and_unschedule(project: Path, engine: Engineer) -> None:
    created = run_json(project, "schedule", "SendWelcomeEmail", "*/5 * * * *", '"ada@example.com"')
    assert (created["kind"], created["name"], created["cron"], created["fires"]) == ("task", "SendWelcomeEmail", "*/5 * * * *", 0)
    (listed,) = run_json(project, "schedules")
    assert listed["id"] == created["id"] and listed["next_fire"] == created["next_fire"]
    assert "SendWelcomeEmail" in invoke("--project", project, "schedules").stdout
    engine.run(advance=300)
    (after,) = run_json(project, "schedules")
    assert after["fires"] == 1 and after["last_fire"] is not None
    assert run_json(project, "list")[0]["name"] == "SendWelcomeEmail"
    fails(project, "schedule", "SendWelcomeEmail", "99 * * * *", '"x"', match="invalid cron expression")
    fails(project, "schedule", "SendWelcomeEmail", "* * *", '"x"', match="has 3 fields")
    assert run_json(project, "unschedule", created["id"][:8])["id"] == created["id"]
    assert run_json(project, "schedules") == []
    fails(project, "unschedule", created["id"], match="no schedule")


def test_bulk_dispatch_from_a_file(project: Path, engine: Engineer, tmp_path: Path) -> None:
    lines = [json.dumps({"email": f"user{i}@example.com", "slack_id": f"U{i}"}) for i in range(50)]
    lines.append(json.dumps([{"email": "user0@example.com", "slack_id": "again"}]))  # custom id taken
    batch = tmp_path / "users.jsonl"
    batch.write_text("\n".join(lines) + "\n\n")
    reply = run_json(project, "dispatch", "WelcomeFlow", "--from-file", batch)
    assert (reply["dispatched"], reply["refused"], reply["ids"][-1]) == (50, 1, None)
    engine.run(advance=5)
    assert {i["status"] for i in run_json(project, "list", "--limit", "100")} == {"completed"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"email": "x@example.com", "slack_id": "U"}) + "\n{not json\n")
    fails(project, "dispatch", "WelcomeFlow", "--from-file", bad, match="line 2: not JSON")
    split = tmp_path / "split.jsonl"  # one value spread over two lines is two bad lines, not one job
    split.write_text('[{"email": "a@example.com",\n "slack_id": "U"}]\n')
    fails(project, "dispatch", "WelcomeFlow", "--from-file", split, match="line 1: not JSON")
    assert len(run_json(project, "list", "--limit", "100")) == 50  # nothing of the bad files was written


def test_dispatch_many_from_python(harness) -> None:
    from flowlib.tasks import Add
    from flowlib.workflows import EventFlow

    from zenaton._runtime import current_runtime
    from zenaton.client import Client

    token = current_runtime.set(harness.runtime)
    try:
        ids = Client("app", "token", "dev").dispatch_many([Add(i, i) for i in range(10)] + [EventFlow("one"), EventFlow("one")])
    finally:
        current_runtime.reset(token)
    assert len([i for i in ids if i]) == 11 and ids[-1] is None
    harness.run()
    assert sum(1 for i in harness.store.list_instances(name="Add") if i.status.value == "completed") == 10

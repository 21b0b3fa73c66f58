"""The command line: click's CliRunner in-process, and the installed `zenaton` for error exits.

Projects come from `zenaton init` in tmp_path (the template's WelcomeFlow). Instances
are run by an engine built in the test against the same SQLite file the CLI uses
(InlineRunner, fake clock), never by a daemon.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from zenaton_runtime.project.config import load_config
from zenaton_runtime.errors import NotFoundError, StateError, ZenatonError
from tests.cli_helpers import (  # noqa: F401  (daemon: a fixture)
    ADA, BOB, STEP_FIELDS, SUMMARY_FIELDS, VIEW_FIELDS, Engineer, daemon, dispatch, fails, invoke, run_json, zenaton,
)
from zenaton_cli.main import main


# -- init ------------------------------------------------------------------------------------

def test_init_creates_a_project(tmp_path: Path, isolated: None) -> None:
    root = tmp_path / "newproj"
    result = invoke("init", root)
    for path in ("zenaton.toml", "boot.py", ".env.example", ".gitignore"):
        assert (root / path).is_file(), path
    for path in ("workflows", "tasks", "events"):
        assert (root / path).is_dir(), path
    assert (root / "workflows" / "welcome_flow.py").is_file()
    assert ".zenaton/" in (root / ".gitignore").read_text()
    assert "created a zenaton project" in result.stdout
    config = load_config(root, environ={})
    assert config.root == root.resolve() and config.app_id == "newproj" and config.env == "dev"
    assert config.has_config_file and config.boot == "boot.py"


def test_init_in_an_existing_project_only_adds_zenaton_toml(tmp_path: Path, isolated: None) -> None:
    root = tmp_path / "legacy"
    (root / "workflows").mkdir(parents=True)
    (root / "boot.py").write_text("# my own boot\n")
    (root / "workflows" / "welcome_flow.py").write_text("# my own workflow\n")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = invoke("init", root)
    after = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert sorted(set(after) - set(before)) == [Path("zenaton.toml")]
    assert (root / "boot.py").read_text() == "# my own boot\n"
    assert (root / "workflows" / "welcome_flow.py").read_text() == "# my own workflow\n"
    assert "existing Zenaton project" in result.stdout
    assert load_config(root, environ={}).boot == "boot.py"


def test_init_twice_refuses_and_changes_nothing(tmp_path: Path, isolated: None) -> None:
    root = tmp_path / "twice"
    invoke("init", root)
    (root / "zenaton.toml").write_text("# edited\n")
    fails(tmp_path, "init", root, match="already exists")
    assert (root / "zenaton.toml").read_text() == "# edited\n"
    result = invoke("init", root, code=1)
    assert isinstance(result.exception, ZenatonError)


def test_init_in_the_working_directory(tmp_path: Path, isolated: None) -> None:
    result = zenaton(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "zenaton.toml").is_file() and (tmp_path / "boot.py").is_file()


# -- dispatch --------------------------------------------------------------------------------

def test_dispatch_json_object_arrives_as_a_record(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    instance = engine.store.get_instance(instance_id)
    assert instance is not None
    assert (instance.name, instance.kind.value, instance.custom_id, instance.env) == ("WelcomeFlow", "workflow", "ada@example.com", "dev")
    view = run_json(project, "inspect", instance_id)
    assert view["properties"]["email"] == "ada@example.com" and view["properties"]["slack_id"] == "U1"
    engine.run(advance=2)
    assert run_json(project, "inspect", instance_id)["status"] == "completed"


def test_dispatch_keyword_argument_and_custom_id(project: Path) -> None:
    instance_id = dispatch(project, "WelcomeFlow", "--arg", f"user={BOB}", "--id", "custom-7")
    (row,) = run_json(project, "list")
    assert row["id"] == instance_id and row["custom_id"] == "custom-7"
    assert run_json(project, "inspect", instance_id)["properties"]["email"] == "bob@example.com"


def test_dispatch_prints_the_id_alone_without_json(project: Path) -> None:
    result = invoke("--project", project, "dispatch", "WelcomeFlow", ADA)
    printed = result.stdout.strip()
    assert len(printed) == 32 and int(printed, 16) >= 0
    assert [row["id"] for row in run_json(project, "list")] == [printed]


def test_dispatch_a_task_with_a_plain_string_argument(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "SendWelcomeEmail", "ada@example.com")
    engine.run()
    view = run_json(project, "inspect", instance_id)
    assert (view["kind"], view["status"], view["custom_id"]) == ("task", "completed", None)
    (step,) = view["steps"]
    assert step["result"] == {"to": "ada@example.com", "status": "sent"}


def test_dispatch_unknown_name_suggests_the_close_one(project: Path) -> None:
    fails(project, "dispatch", "WelcomFlow", ADA, match="unknown workflow or task 'WelcomFlow'; did you mean WelcomeFlow?")
    result = invoke("--project", project, "dispatch", "WelcomFlow", ADA, code=1)
    assert isinstance(result.exception, NotFoundError)
    assert run_json(project, "list") == []


def test_dispatch_arguments_the_constructor_refuses(project: Path) -> None:
    fails(project, "dispatch", "WelcomeFlow", "not-an-object", match="cannot create WelcomeFlow with these arguments")
    fails(project, "dispatch", "WelcomeFlow", match="cannot create WelcomeFlow")
    assert run_json(project, "list") == []


def test_dispatch_malformed_keyword_argument_is_a_usage_error(project: Path) -> None:
    result = invoke("--project", project, "dispatch", "WelcomeFlow", "--arg", "no-equals-sign", code=2)
    assert "KEY=VALUE" in result.output
    installed = zenaton(project, "dispatch", "WelcomeFlow", "--arg", "1x=2")
    assert installed.returncode == 2 and "KEY=VALUE" in installed.stderr and "Traceback" not in installed.stderr


def test_dispatch_duplicate_custom_id_is_refused(project: Path) -> None:
    dispatch(project, "WelcomeFlow", ADA)
    fails(project, "dispatch", "WelcomeFlow", ADA, match="ada@example.com")
    assert len(run_json(project, "list")) == 1


# -- list ------------------------------------------------------------------------------------

def test_list_fields_order_and_filters(project: Path, engine: Engineer) -> None:
    ada = dispatch(project, "WelcomeFlow", ADA)
    task = dispatch(project, "SendWelcomeEmail", "carl@example.com")
    bob = dispatch(project, "WelcomeFlow", BOB)
    engine.run()  # the task completes; both workflows wait for UserActivated
    rows = run_json(project, "list")
    assert [r["id"] for r in rows] == [bob, task, ada]  # newest first
    for row in rows:
        assert SUMMARY_FIELDS <= set(row)
        assert row["env"] == "dev" and row["created_at"].endswith("Z") and row["updated_at"] >= row["created_at"]
    assert {r["id"]: (r["kind"], r["name"], r["custom_id"], r["status"]) for r in rows} == {
        ada: ("workflow", "WelcomeFlow", "ada@example.com", "running"),
        bob: ("workflow", "WelcomeFlow", "bob@example.com", "running"),
        task: ("task", "SendWelcomeEmail", None, "completed"),
    }
    assert [r["id"] for r in run_json(project, "list", "--status", "running")] == [bob, ada]
    assert [r["id"] for r in run_json(project, "list", "--status", "completed")] == [task]
    assert run_json(project, "list", "--status", "paused") == []
    assert [r["id"] for r in run_json(project, "list", "--name", "WelcomeFlow")] == [bob, ada]
    assert [r["id"] for r in run_json(project, "list", "--limit", "1")] == [bob]
    assert [r["id"] for r in run_json(project, "list", "--name", "WelcomeFlow", "--limit", "1")] == [bob]
    table = invoke("--project", project, "list").stdout
    assert all(i in table for i in (ada, bob, task)) and "WelcomeFlow" in table


def test_list_refuses_an_unknown_status(project: Path) -> None:
    result = invoke("--project", project, "list", "--status", "sleeping", code=2)
    assert "sleeping" in result.output


def test_list_is_per_environment(project: Path) -> None:
    staging = json.loads(invoke("--project", project, "--env", "staging", "dispatch", "WelcomeFlow", ADA, "--json").stdout)["id"]
    assert run_json(project, "list") == []
    assert [r["id"] for r in run_json(project, "list", "--env", "staging")] == [staging]
    assert [(r["id"], r["env"]) for r in run_json(project, "list", "--all-envs")] == [(staging, "staging")]


def test_list_without_instances(project: Path) -> None:
    assert run_json(project, "list") == []
    assert "no instances" in invoke("--project", project, "list").stdout


# -- inspect ---------------------------------------------------------------------------------

def test_inspect_a_finished_workflow(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run(advance=2)
    view = run_json(project, "inspect", instance_id)
    assert VIEW_FIELDS <= set(view)
    assert (view["id"], view["kind"], view["name"], view["custom_id"], view["env"], view["status"], view["error"]) == (
        instance_id, "workflow", "WelcomeFlow", "ada@example.com", "dev", "completed", None
    )
    receipt = {"to": "ada@example.com", "status": "sent"}
    assert view["properties"] == {
        "email": "ada@example.com", "slack_id": "U1", "activated": False, "email_receipt": receipt,
    }
    for step in view["steps"]:
        assert STEP_FIELDS <= set(step), step
    summary = [(s["position"], s["kind"], s["name"], s["status"]) for s in view["steps"]]
    assert summary == [
        (1, "task", "SendWelcomeEmail", "completed"),
        (2, "wait", "UserActivated", "timed out"),
        (3, "task", "IntroduceUserThroughSlack", "completed"),
        (None, "completed", None, "done"),
    ]
    first, wait, last, done = view["steps"]
    assert first["attempts"] == 1 and first["result"] == receipt and first["error"] is None
    assert first["properties"]["email_receipt"] == receipt
    assert first["started_at"] <= first["finished_at"]
    assert wait["finished_at"] is not None
    assert last["result"] == "introduced U1"
    assert done["result"] == "introduced U1"
    text = invoke("--project", project, "inspect", instance_id).stdout
    assert "WelcomeFlow" in text and "timeline" in text and "SendWelcomeEmail" in text


def test_inspect_by_id_prefix_and_custom_id(project: Path) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    assert run_json(project, "inspect", instance_id[:6])["id"] == instance_id
    assert run_json(project, "inspect", instance_id[:10])["id"] == instance_id
    assert run_json(project, "inspect", "ada@example.com")["id"] == instance_id
    assert run_json(project, "inspect", "ada@example.com", "--name", "WelcomeFlow")["id"] == instance_id
    fails(project, "inspect", instance_id[:5], match="no instance")  # prefixes need 6 characters


def test_inspect_unknown_id(project: Path) -> None:
    fails(project, "inspect", "0123456789abcdef", match="no instance '0123456789abcdef'")
    result = invoke("--project", project, "inspect", "nope", "--json", code=1)
    assert isinstance(result.exception, NotFoundError)


# -- control in the wrong state --------------------------------------------------------------

def test_control_commands_in_the_wrong_state(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    fails(project, "resume", instance_id, match=f"cannot resume WelcomeFlow {instance_id}: it is running")
    fails(project, "retry", instance_id, match=f"cannot retry WelcomeFlow {instance_id}: it is running")
    # No daemon runs here: the intent is queued, and applied by the next engine step.
    assert run_json(project, "pause", instance_id) == {
        "id": instance_id, "action": "pause", "applied": False, "status": "running",
    }
    engine.run()
    assert run_json(project, "inspect", instance_id)["status"] == "paused"
    fails(project, "pause", "ada@example.com", match="it is paused")
    fails(project, "retry", instance_id, match="has no error to retry; use resume")
    result = invoke("--project", project, "retry", instance_id, code=1)
    assert isinstance(result.exception, StateError)
    assert "resume queued" in invoke("--project", project, "resume", instance_id[:8]).stdout
    engine.run(advance=2)
    assert run_json(project, "inspect", instance_id)["status"] == "completed"
    for action in ("pause", "resume", "kill", "retry"):
        fails(project, action, instance_id, match=f"cannot {action} WelcomeFlow {instance_id}: it is completed")


def test_control_commands_wait_for_a_running_daemon(project: Path, daemon: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    daemon.run()
    result = invoke("--project", project, "pause", instance_id)
    assert (result.stdout, result.stderr) == (f"pause: WelcomeFlow {instance_id} is now paused\n", "")
    assert run_json(project, "resume", instance_id) == {
        "id": instance_id, "action": "resume", "applied": True, "status": "running",
    }
    reply = run_json(project, "send-event", instance_id, "UserActivated", '"cli"')
    assert (reply["applied"], reply["status"]) == (True, "completed")


def test_kill_then_control_refused(project: Path, engine: Engineer) -> None:
    instance_id = dispatch(project, "WelcomeFlow", ADA)
    engine.run()
    assert run_json(project, "kill", instance_id)["action"] == "kill"
    engine.run(advance=2)
    assert run_json(project, "inspect", instance_id)["status"] == "killed"
    fails(project, "kill", instance_id, match="it is killed")
    fails(project, "resume", instance_id, match="it is killed")


def test_tasks_cannot_be_paused(project: Path) -> None:
    task_id = dispatch(project, "SendWelcomeEmail", "ada@example.com")
    fails(project, "pause", task_id, match="only workflows can be paused")
    fails(project, "retry", task_id, match="it is running")


def test_control_of_an_unknown_instance(project: Path) -> None:
    fails(project, "kill", "missing-id", match="no instance 'missing-id'")


def test_a_second_store_in_this_process_keeps_the_first_ones_locks(project: Path, engine: Engineer) -> None:
    """The CLI in-process opens its own store beside the engine's; a CLI in another process
    must then still see the engine's connection and leave its WAL alone."""
    instance_id = dispatch(project, "WelcomeFlow", ADA)  # a second connection, opened and closed here
    engine.run()
    assert zenaton(project, "list").returncode == 0  # another process opens and closes the file
    assert (project / ".zenaton" / "zenaton.db-wal").exists()
    engine.run(advance=2)
    assert zenaton(project, "status").returncode == 0
    assert run_json(project, "inspect", instance_id)["status"] == "completed"


# -- daemon status and stop ------------------------------------------------------------------

def test_status_without_a_daemon(project: Path, engine: Engineer) -> None:
    dispatch(project, "WelcomeFlow", ADA)
    dispatch(project, "SendWelcomeEmail", "x@example.com")
    engine.run()
    data = run_json(project, "status")
    assert data["running"] is False and data["pid"] is None and data["uptime"] is None
    assert data["env"] == "dev"
    assert data["store"] == f"sqlite:///{project.resolve()}/.zenaton/zenaton.db"
    assert data["instances"] == {"running": 1, "paused": 0, "completed": 1, "killed": 0, "failed": 0}
    assert data["tasks_queued"] == 0
    assert data["daemons"] == []
    assert "not running" in invoke("--project", project, "status").stdout


def test_status_lists_the_daemons_on_the_store_and_shows_a_silent_one_as_stale(project: Path, engine: Engineer) -> None:
    import time

    from zenaton_runtime.models import DaemonRecord

    now = time.time()

    def record(id: str, heartbeat_at: float) -> DaemonRecord:
        stats = '{"steps": 7}'
        return DaemonRecord(id, "box", 4242, "dev", "0.1.0", now - 60, heartbeat_at, 8, 3, 12, 5, 7, 2.5, stats)

    engine.store.heartbeat(record("a" * 32, now - 1))
    engine.store.heartbeat(record("b" * 32, now - 30))  # no heartbeat for 30 s: it died or hangs
    data = run_json(project, "status")
    alive, stale = data["daemons"]
    assert (alive["id"], alive["alive"], stale["id"], stale["alive"]) == ("a" * 32, True, "b" * 32, False)
    assert {k: alive[k] for k in ("host", "pid", "workers", "busy_workers", "instances_held", "steps_per_second")} == {
        "host": "box", "pid": 4242, "workers": 8, "busy_workers": 3, "instances_held": 12, "steps_per_second": 2.5,
    }
    assert alive["stats"] == {"steps": 7} and 0 <= alive["heartbeat_age"] < 10 <= stale["heartbeat_age"]
    text = invoke("--project", project, "status").stdout
    assert "aaaaaaaa" in text and "alive" in text and "bbbbbbbb" in text and "stale" in text
    assert "3/8 busy" in text


def test_stop_without_a_daemon(project: Path) -> None:
    fails(project, "stop", match="no daemon is running")


# -- configuration errors --------------------------------------------------------------------

def test_malformed_zenaton_toml_names_the_line(project: Path) -> None:
    (project / "zenaton.toml").write_text('[project]\nname = "x"\nenv = dev\n')
    line = fails(project, "list", match="zenaton.toml")
    assert "line 3" in line


def test_unknown_key_in_zenaton_toml_is_named(project: Path) -> None:
    (project / "zenaton.toml").write_text('[project]\nnmae = "x"\n')
    fails(project, "list", match="unknown key project.nmae")
    (project / "zenaton.toml").write_text('[projet]\nname = "x"\n')
    fails(project, "status", match="unknown section [projet]")
    (project / "zenaton.toml").write_text('[daemon]\nconcurrency = "8"\n')
    fails(project, "dispatch", "WelcomeFlow", ADA, match="daemon.concurrency must be")


def test_a_lease_shorter_than_a_decision_and_two_heartbeats_is_refused(project: Path) -> None:
    (project / "zenaton.toml").write_text('[daemon]\nlease_ttl = 10\n')
    line = fails(project, "start", match="daemon.lease_ttl must be at least daemon.decision_timeout")
    assert "(14)" in line and "not 10" in line
    (project / "zenaton.toml").write_text('[daemon]\nlease_ttl = "long"\n')
    fails(project, "status", match="daemon.lease_ttl must be")
    (project / "zenaton.toml").write_text('[daemon]\nlease_ttl = 6\ndecision_timeout = 2\n')
    assert zenaton(project, "status").returncode == 0


def test_no_project_found(tmp_path: Path) -> None:
    fails(tmp_path, "list", match="no zenaton project found")


def test_main_turns_errors_into_one_line(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["zenaton", "--project", str(project), "inspect", "abcdefabcdef"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == ["error: no instance 'abcdefabcdef' (not an id, an id prefix or a custom id in env 'dev')"]
    monkeypatch.setattr(sys, "argv", ["zenaton", "--project", str(project), "list", "--json"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out) == []


def test_the_cli_starts_without_what_only_some_commands_need() -> None:
    """`zenaton --help` (and every command's start) imports no engine step, replay core, web
    server, database driver or log rotation: those load in the commands that use them."""
    import subprocess

    heavy = ("greenlet", "zenaton_runtime.replay.run", "zenaton_runtime.engine.engine", "zenaton_runtime.daemon",
             "logging.handlers", "starlette", "uvicorn", "jinja2", "psycopg", "watchdog", "prometheus_client",
             "zenaton_runtime.store.sqlite", "zenaton_runtime.store.postgres", "croniter", "dotenv")
    code = f"import sys, zenaton_cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

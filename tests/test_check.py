"""zenaton check, zenaton export and replay(): instances made by v1 of a workflow in a real
SQLite store, the code changed on disk to an incompatible v2 and to a compatible one."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import ADA, Engineer, fails, zenaton
from zenaton.testing import replay
from zenaton_runtime.client.control import Control
from zenaton_runtime.project.config import load_config

WAIT = "        Wait(UserActivated).seconds(1).execute()\n"
# v2, incompatible: a task where v1 waits (position 2)
INCOMPATIBLE = "        SendWelcomeEmail(self.email).execute()\n"
# v2, compatible: the same steps up to the wait, then a new task at position 3
COMPATIBLE = WAIT + "        SendWelcomeEmail(self.email).execute()\n"


def user(name: str) -> str:
    return json.dumps({"email": f"{name}@example.com", "slack_id": name})


def change_code(project: Path, replacement: str) -> None:
    flow = project / "workflows" / "welcome_flow.py"
    text = flow.read_text()
    assert WAIT in text, "the template's WelcomeFlow changed"
    flow.write_text(text.replace(WAIT, replacement, 1))


def check(project: Path, *args: Any) -> tuple[int, dict[str, Any]]:
    result = zenaton(project, "check", "--json", *args)
    assert result.returncode in (0, 1) and not result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def broken(view: dict[str, Any]) -> dict[str, str]:
    """custom id -> why, of every instance that would break."""
    return {
        i["custom_id"]: f"{i['position']}: {i['journal']} / {i['code']}"
        for c in view["classes"]
        for i in c["instances"]
        if i["outcome"] == "broken"
    }


def digest(project: Path) -> str:
    """The store file's bytes, hashed; and no journal of changes beside it (a reader opening the
    store may leave SQLite's empty -wal and its -shm index, which hold nothing)."""
    store = project / ".zenaton" / "zenaton.db"
    wal = store.with_name("zenaton.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "something was written to the store's WAL"
    return hashlib.sha256(store.read_bytes()).hexdigest()


@pytest.fixture
def v1_instances(project: Path) -> dict[str, str]:
    """In the project's SQLite store, by v1: carol completed; ada, bob waiting at step 2 (the wait);
    eve paused there; dan dispatched, not started. Custom id -> instance id."""
    engineer = Engineer(project)
    control = Control(engineer.store, engineer.project.codec, load_config(project).env)
    flow = engineer.project.workflow("WelcomeFlow")
    ids = {}

    def dispatch(name: str) -> None:
        ids[name] = control.dispatch(flow(json.loads(user(name), object_hook=lambda d: type("U", (), d)))).id

    dispatch("carol")
    engineer.run(advance=5)
    for name in ("ada", "bob", "eve"):
        dispatch(name)
    engineer.run()
    control.pause(control.get(ids["eve"]))
    engineer.run()
    dispatch("dan")
    statuses = {name: control.get(i).status.value for name, i in ids.items()}
    assert statuses == {"carol": "completed", "ada": "running", "bob": "running", "eve": "paused", "dan": "running"}
    engineer.close()
    return {f"{name}@example.com": instance_id for name, instance_id in ids.items()}


def test_check_reports_exactly_the_instances_an_incompatible_change_breaks_and_writes_nothing(
    project: Path, v1_instances: dict[str, str]
) -> None:
    before = digest(project)
    code, view = check(project)
    assert code == 0 and (view["checked"], view["clean"], view["broken"]) == (4, 4, 0)  # v1 against v1

    change_code(project, INCOMPATIBLE)
    code, view = check(project)
    assert code == 1
    assert (view["checked"], view["clean"], view["broken"]) == (4, 1, 3)
    why = "2: wait UserActivated / task SendWelcomeEmail"
    assert broken(view) == {"ada@example.com": why, "bob@example.com": why, "eve@example.com": why}
    (flow,) = view["classes"]
    assert (flow["name"], flow["checked"], flow["clean"], flow["broken"]) == ("WelcomeFlow", 4, 1, 3)
    eve = next(i for i in flow["instances"] if i["custom_id"] == "eve@example.com")
    assert eve["id"] == v1_instances["eve@example.com"] and eve["status"] == "paused"

    text = zenaton(project, "check")
    assert text.returncode == 1
    assert "WelcomeFlow  1 replay cleanly, 3 would break" in text.stdout
    assert (
        f"broken  {v1_instances['ada@example.com']}  ada@example.com  running  position 2: the journal holds "
        "wait UserActivated, the code asks for task SendWelcomeEmail"
    ) in text.stdout
    assert digest(project) == before  # byte-identical: a check writes nothing


def test_a_compatible_change_passes_and_completed_instances_are_checked_on_request(
    project: Path, v1_instances: dict[str, str]
) -> None:
    before = digest(project)
    change_code(project, COMPATIBLE)
    code, view = check(project)
    assert code == 0 and (view["checked"], view["broken"]) == (4, 0)

    code, view = check(project, "--completed", "5")  # carol went past the wait: v2 asks for a new task there
    assert code == 1 and view["checked"] == 5
    assert broken(view) == {"carol@example.com": "3: task IntroduceUserThroughSlack / task SendWelcomeEmail"}

    code, view = check(project, "--name", "Other")
    assert code == 0 and view["checked"] == 0 and view["classes"] == []
    assert digest(project) == before


def test_an_exported_journal_replays_both_ways(project: Path, v1_instances: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "ada.json"
    result = zenaton(project, "export", "ada@example.com", "-o", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"exported WelcomeFlow {v1_instances['ada@example.com']} (")
    document = json.loads(path.read_text())
    assert (document["format"], document["version"], document["instance"]["custom_id"]) == (
        "zenaton-journal",
        1,
        "ada@example.com",
    )
    assert [e["type"] for e in document["journal"]] == ["started", "task_scheduled", "task_completed", "wait_started"]
    printed = json.loads(zenaton(project, "export", v1_instances["ada@example.com"]).stdout)
    assert {**printed, "exported_at": None} == {**document, "exported_at": None}  # stdout: the same document

    from workflows.welcome_flow import WelcomeFlow  # v1, as the project fixture imported it

    replayed = replay(path, WelcomeFlow)
    assert not replayed.completed and replayed.properties["email_receipt"]["status"] == "sent"

    code, view = check(project, path)
    assert code == 0 and view["checked"] == 1 and view["files"] == [str(path)]
    change_code(project, INCOMPATIBLE)
    code, view = check(project, path)
    assert code == 1
    (instance,) = view["classes"][0]["instances"]
    assert (instance["file"], instance["position"], instance["journal"], instance["code"]) == (
        str(path),
        2,
        "wait UserActivated",
        "task SendWelcomeEmail",
    )
    # in a fresh process, the code on disk (v2) against the journal: the non-determinism error
    probe = (
        "import sys; sys.path.insert(0, '.')\n"
        "from zenaton.testing import replay, NonDeterminismError\n"
        "from workflows.welcome_flow import WelcomeFlow\n"
        f"try:\n    replay({str(path)!r}, WelcomeFlow)\nexcept NonDeterminismError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (
        f"non-deterministic workflow: instance {v1_instances['ada@example.com']}, position 2: "
        "the journal holds wait UserActivated but the code requested task SendWelcomeEmail"
    ), out.stderr


def test_bad_input_is_one_line_and_a_non_zero_exit(project: Path, v1_instances: dict[str, str], tmp_path: Path) -> None:
    fails(project, "export", "no-such-instance", match="no instance 'no-such-instance'")
    fails(project, "check", tmp_path / "missing.json", match="cannot read")
    (tmp_path / "text.json").write_text("hello")
    fails(project, "check", tmp_path / "text.json", match="is not a zenaton journal export: not JSON")
    (tmp_path / "other.json").write_text('{"some": "json"}')
    fails(project, "check", tmp_path / "other.json", match='no "format": "zenaton-journal"')
    (tmp_path / "v9.json").write_text('{"format": "zenaton-journal", "version": 9}')
    fails(project, "check", tmp_path / "v9.json", match="version 9 is not supported (this zenaton reads version 1")
    damaged = json.loads(zenaton(project, "export", "ada@example.com").stdout)
    damaged["journal"][1]["position"] = "two"
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    fails(project, "check", tmp_path / "damaged.json", match="journal[1].position is not an integer or null")
    fails(project, "export", "ada@example.com", "-o", tmp_path / "no" / "such" / "dir.json", match="cannot write")
    change_code(project, "        Wait(UserActivated).seconds(1).execute(\n")  # a syntax error on disk
    fails(project, "check", match="syntax error in")


def test_check_refuses_a_store_it_would_have_to_create(project: Path) -> None:
    fails(project, "check", match="no store at")
    assert not (project / ".zenaton" / "zenaton.db").exists()


def test_the_template_project_tests_pass_with_pytest(project: Path) -> None:
    """`zenaton init` writes tests/ with the kit; in the new project, `pytest` passes."""
    assert (project / "tests" / "test_welcome_flow.py").is_file() and (project / "pytest.ini").is_file()
    pytest_bin = Path(sys.executable).parent / "pytest"
    result = subprocess.run(
        [str(pytest_bin), "-q", "-p", "no:cacheprovider"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert not (project / ".zenaton").exists()  # the tests wrote no store


def test_the_check_benchmark_runs_small(tmp_path: Path, isolated: None) -> None:
    """benchmarks/check.py, --quick (200 instances): so that it does not rot; no figure asserted."""
    from benchmarks.check import main

    out = tmp_path / "check.json"
    assert main(["--quick", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["running"] == results["instances"] == 200
    assert results["check_s"] > 0 and results["all_broken_check_s"] > 0

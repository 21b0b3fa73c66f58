"""`zenaton doctor` on real projects: healthy with its daemon, and each kind of trouble."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e import Daemon, make_project, zenaton


def doctor(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = zenaton(root, "doctor", "--json", *args, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    return result.returncode, report


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["verdict"] for c in report["checks"]}


def test_a_healthy_project_with_its_daemon(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    daemon = Daemon(root).started()
    try:
        code, report = doctor(root)
        text = zenaton(root, "doctor").stdout
    finally:
        daemon.stop()
    assert code == 0 and report["healthy"] is True
    assert verdicts(report) == {
        "config": "ok", "code": "ok", "store": "ok", "schema": "ok", "disk": "ok", "daemon": "ok", "stuck": "ok",
        "versions": "ok",
    }
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["daemon"]["pid"] == daemon.process.pid and checks["daemon"]["workers"] == 2
    assert "integrity_check ok" in checks["schema"]["detail"] and set(checks["versions"]) >= {"python", "sqlite"}
    lines = text.strip().splitlines()
    assert len(lines) == 8 and all(line.split()[0] in ("ok", "warn") for line in lines)


def test_without_a_daemon_it_warns_when_work_waits(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    code, report = doctor(root)
    assert code == 0 and verdicts(report)["daemon"] == "warn"
    assert "1 running instance(s) wait for it" in {c["check"]: c for c in report["checks"]}["daemon"]["detail"]


def test_code_that_does_not_import_fails(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "flowlib" / "workflows.py").write_text("def broken(:\n")
    code, report = doctor(root)
    checks = {c["check"]: c for c in report["checks"]}
    assert code == 1 and report["healthy"] is False and checks["code"]["verdict"] == "fail"
    assert "SyntaxError" in checks["code"]["detail"] or "syntax" in checks["code"]["detail"].lower()
    assert checks["store"]["verdict"] == "ok"  # the other checks still run


def test_a_corrupt_store_fails(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    store = root / ".zenaton" / "zenaton.db"
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(store.read_bytes())
    data[4096 : 4096 * 3] = b"\xff" * 8192  # two pages of its tables, scribbled over
    store.write_bytes(bytes(data))
    code, report = doctor(root)
    failed = [c for c in report["checks"] if c["verdict"] == "fail"]
    assert code == 1 and failed and {c["check"] for c in failed} & {"store", "schema"}


def test_a_stuck_instance_is_named(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    daemon = Daemon(root).started()
    try:
        stuck = json.loads(zenaton(root, "dispatch", "WaitWithTimeout", "stuck", "--json").stdout)["id"]
        daemon.wait_until(
            lambda: json.loads(zenaton(root, "inspect", stuck, "--json").stdout)["steps"] != [], what="the wait"
        )
    finally:
        daemon.stop()
    with sqlite3.connect(root / ".zenaton" / "zenaton.db") as conn:  # its timer lost: nothing will end the wait
        conn.execute("DELETE FROM timers WHERE instance_id = ?", (stuck,))
        conn.execute(
            "UPDATE journal SET data = json_set(data, '$.fire_at', ?) WHERE instance_id = ? AND type = 'wait_started'",
            (0.0, stuck),
        )
    daemon = Daemon(root).started()
    try:
        code, report = doctor(root)
    finally:
        daemon.stop()
    checks = {c["check"]: c for c in report["checks"]}
    assert code == 1 and checks["stuck"]["verdict"] == "fail"
    (found,) = checks["stuck"]["stuck"]
    assert found["id"] == stuck and "should have ended" in found["reason"]

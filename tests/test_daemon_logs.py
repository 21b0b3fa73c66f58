"""The daemon's log: plain lines by default, one JSON object a line on request, a file rotated by size."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e import Daemon, make_project, zenaton
from zenaton_cli.daemon_log import StepLog
from zenaton_runtime.models import LogLine

FIELDS = {"time", "level", "event", "instance_id", "name", "position", "message"}


def test_json_lines_carry_the_event_and_the_instance(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    daemon = Daemon(root, "--log-format", "json").started()
    try:
        instance = json.loads(zenaton(root, "dispatch", "Sequential", "4", "--json").stdout)["id"]
        daemon.expect(r'"event": "completed"')
    finally:
        assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.log if line.startswith("{")]
    assert records and all(set(r) == FIELDS for r in records)
    assert len(records) == len([line for line in daemon.log if line.strip()])  # every line is one JSON object
    assert records[0]["event"] == "daemon" and "daemon started" in records[0]["message"]
    mine = [r for r in records if r["instance_id"] == instance]
    assert [(r["event"], r["position"]) for r in mine] == [
        ("task_scheduled", 1),
        ("task_completed", 1),
        ("task_scheduled", 2),
        ("task_completed", 2),
        ("completed", None),
    ]
    assert all(r["name"] == "Sequential" and r["level"] == "info" for r in mine)
    assert mine[1]["message"] == "task Add completed (position 1)"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)


def test_zenaton_toml_chooses_the_format_and_a_file_that_rotates(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    toml = root / "zenaton.toml"
    toml.write_text(toml.read_text().replace("[daemon]\n", '[daemon]\nlog_format = "json"\nlog_file = "logs/daemon.log"\n'))
    daemon = Daemon(root, "--log-max-bytes", "2048", "--log-backups", "3")
    try:
        (root / "many.jsonl").write_text("".join(f"[{n}]\n" for n in range(40)))
        zenaton(root, "dispatch", "Sequential", "--from-file", str(root / "many.jsonl"))
        daemon.wait_until(
            lambda: len(list((root / "logs").glob("daemon.log.*"))) == 3 and completed(root) == 40,
            what="40 instances completed, the log rotated three times",
        )
    finally:
        assert daemon.stop() == 0
    files = sorted((root / "logs").iterdir())
    assert [f.name for f in files] == ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
    for line in _lines(root):  # rotated between steps: never in the middle of a line
        assert set(json.loads(line)) == FIELDS
    assert not [line for line in daemon.log if '"event"' in line]  # nothing of it on stderr


def completed(root: Path) -> int:
    return json.loads(zenaton(root, "status", "--json").stdout)["instances"]["completed"]


def _lines(root: Path) -> list[str]:
    return [line for f in sorted((root / "logs").glob("daemon.log*")) for line in f.read_text().splitlines() if line]


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    toml = root / "zenaton.toml"
    toml.write_text(toml.read_text().replace("[daemon]\n", '[daemon]\nlog_format = "xml"\n'))
    result = zenaton(root, "start", check=False)
    assert result.returncode == 1 and 'daemon.log_format must be "plain" or "json", not \'xml\'' in result.stderr
    assert "Traceback" not in result.stderr


def test_the_plain_format_is_unchanged(capsys) -> None:  # type: ignore[no-untyped-def]
    log = StepLog()
    log(LogLine("task Add completed (position 1)", event="task_completed", instance_id="ab" * 16, name="Flow", position=1))
    log("zenaton daemon stopped (0 task(s) re-queued)")
    log.flush()
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d Flow abababab: task Add completed \(position 1\)", lines[0])
    assert lines[1].endswith(" zenaton daemon stopped (0 task(s) re-queued)")

"""`zenaton backup` while the daemon runs, `zenaton restore` into another project, and the refusals."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.e2e import Daemon, make_project, zenaton

INSTANCES = 1000


def store_of(root: Path) -> Path:
    return root / ".zenaton" / "zenaton.db"


def statuses(root: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{store_of(root)}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM instances GROUP BY status").fetchall())


def dispatch_all(root: Path) -> None:
    half = INSTANCES // 2
    (root / "seq.jsonl").write_text("".join(f"[{n}]\n" for n in range(half)))
    (root / "waits.jsonl").write_text("".join(f'["w{n}"]\n' for n in range(half)))
    for name, lines in (("Sequential", "seq.jsonl"), ("WaitWithTimeout", "waits.jsonl")):
        result = json.loads(zenaton(root, "dispatch", name, "--from-file", str(root / lines), "--json").stdout)
        assert result["dispatched"] == half


def test_a_backup_taken_during_a_run_restores_into_a_new_project_where_everything_completes(tmp_path: Path) -> None:
    source = make_project(tmp_path / "a")
    daemon = Daemon(source).started()
    try:
        dispatch_all(source)
        daemon.wait_until(lambda: statuses(source).get("completed", 0) >= 100, what="some completed")
        made = json.loads(zenaton(source, "backup", str(tmp_path / "snapshot.db"), "--json").stdout)
    finally:
        assert daemon.stop() == 0
    assert made["instances"] == INSTANCES
    at_backup = statuses_of_file(tmp_path / "snapshot.db")
    assert at_backup.get("running", 0) > 0  # taken mid-run: the waits were still waiting

    target = make_project(tmp_path / "b")
    restored = json.loads(zenaton(target, "restore", str(tmp_path / "snapshot.db"), "--yes", "--json").stdout)
    assert restored["instances"] == INSTANCES and restored["kept"] is None
    assert statuses(target) == at_backup  # every instance present, as it was
    daemon = Daemon(target).started()
    try:
        daemon.wait_until(lambda: statuses(target) == {"completed": INSTANCES}, timeout=60, what="all completed")
    finally:
        assert daemon.stop() == 0
    listed = json.loads(zenaton(target, "list", "--name", "Sequential", "--limit", "1", "--json").stdout)
    view = json.loads(zenaton(target, "inspect", listed[0]["id"], "--json").stdout)
    assert view["status"] == "completed" and [s["kind"] for s in view["steps"]] == ["task", "task", "completed"]


def statuses_of_file(path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM instances GROUP BY status").fetchall())


def test_restore_keeps_the_store_it_replaces(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    zenaton(root, "backup", str(tmp_path / "one.db"))
    zenaton(root, "dispatch", "Sequential", "2")
    before = store_of(root).read_bytes()
    result = zenaton(root, "restore", str(tmp_path / "one.db"), "--yes")
    kept = [
        p
        for p in store_of(root).parent.iterdir()
        if p.name.startswith("zenaton.db.before-restore-") and not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(kept) == 1 and f"kept as {kept[0]}" in result.stdout
    assert kept[0].read_bytes() == before
    assert statuses(root) == {"running": 1}


def test_restore_is_refused_while_the_daemon_runs_and_changes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    zenaton(root, "backup", str(tmp_path / "copy.db"))
    daemon = Daemon(root).started()
    try:
        refused = zenaton(root, "restore", str(tmp_path / "copy.db"), "--yes", check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "cannot restore while the daemon runs" in refused.stderr and "zenaton stop" in refused.stderr
        assert not [p for p in store_of(root).parent.iterdir() if "before-restore" in p.name]
    finally:
        daemon.stop()


def test_a_corrupt_or_foreign_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    zenaton(root, "backup", str(tmp_path / "good.db"))
    good = (tmp_path / "good.db").read_bytes()
    (tmp_path / "truncated.db").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = store_of(root).read_bytes()
    for name, message in (
        ("truncated.db", "malformed"),
        ("garbage.db", "not a readable SQLite store"),
        ("foreign.db", "not a zenaton store"),
        ("missing.db", "no file"),
    ):
        refused = zenaton(root, "restore", str(tmp_path / name), "--yes", check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert store_of(root).read_bytes() == before
    assert not [p for p in store_of(root).parent.iterdir() if "before-restore" in p.name or "restoring" in p.name]


def test_backup_refusals(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "Sequential", "1")
    (tmp_path / "taken.db").write_text("mine")
    refused = zenaton(root, "backup", str(tmp_path / "taken.db"), check=False)
    assert refused.returncode == 1 and "exists; give a new file name" in refused.stderr
    assert (tmp_path / "taken.db").read_text() == "mine"
    no_confirm = zenaton(root, "restore", str(tmp_path / "taken.db"), check=False)
    assert no_confirm.returncode == 2 and "--yes" in no_confirm.stderr
    toml = root / "zenaton.toml"
    toml.write_text(toml.read_text() + '\n[store]\nurl = "postgresql://zenaton@db.example/zenaton"\n')
    elsewhere = zenaton(root, "backup", str(tmp_path / "pg.db"), check=False)
    assert elsewhere.returncode == 1 and "pg_dump" in elsewhere.stderr and not (tmp_path / "pg.db").exists()

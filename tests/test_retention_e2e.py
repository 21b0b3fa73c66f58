"""Retention end to end: `zenaton prune` and `zenaton vacuum` on a real store beside a real daemon,
the refusals, and the daemon's background retention ([retention] in zenaton.toml)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.e2e import Daemon, make_project, zenaton
from tests.postgres_server import pg_server, pg_url  # noqa: F401  (fixtures: a server, a fresh database)

DAY = 86400.0


def store_of(root: Path) -> Path:
    return root / ".zenaton" / "zenaton.db"


def rows(root: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{store_of(root)}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def statuses(root: Path) -> dict[str, int]:
    return dict(rows(root, "SELECT status, count(*) FROM instances GROUP BY status"))  # type: ignore[arg-type]


def age(root: Path, seconds: float) -> None:
    """Every instance last updated ``seconds`` earlier than it was (time moved, without waiting)."""
    with sqlite3.connect(store_of(root), timeout=30) as conn:
        conn.execute("UPDATE instances SET updated_at = updated_at - ?", (seconds,))


def ids_of(root: Path, name: str) -> list[str]:
    return [str(r[0]) for r in rows(root, "SELECT id FROM instances WHERE name = ? ORDER BY ord", name)]


def dispatch_plain(root: Path, count: int) -> None:
    (root / "plain.jsonl").write_text("".join(f"[{n}]\n" for n in range(count)))
    zenaton(root, "dispatch", "Plain", "--from-file", str(root / "plain.jsonl"), "--json")


def test_prune_archives_and_removes_old_finished_instances_and_spares_the_rest(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    daemon = Daemon(root).started()
    try:
        dispatch_plain(root, 5)
        zenaton(root, "dispatch", "StartsShifty")
        zenaton(root, "dispatch", "Victim", "v1")
        daemon.wait_until(lambda: statuses(root).get("completed", 0) == 5 and len(ids_of(root, "Shifty")) == 1)
        (child,), (parent,), (victim,) = ids_of(root, "Shifty"), ids_of(root, "StartsShifty"), ids_of(root, "Victim")
        zenaton(root, "kill", child)
        daemon.wait_until(lambda: statuses(root).get("killed", 0) == 1, what="the child killed")
        plain = set(ids_of(root, "Plain"))
        age(root, 2 * DAY)

        refused = zenaton(root, "prune", check=False)  # no cutoff, no [retention]
        assert refused.returncode == 1 and "--older-than" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1

        dry = json.loads(zenaton(root, "prune", "--older-than", "1d", "--dry-run", "--json").stdout)
        assert dry["dry_run"] and dry["pruned"] == 0 and {i["id"] for i in dry["instances"]} == plain
        text = zenaton(root, "prune", "--older-than", "1d", "--dry-run").stdout
        assert "would prune 5 finished instance(s)" in text and all(i in text for i in plain)
        assert statuses(root)["completed"] == 5  # nothing removed

        assert json.loads(zenaton(root, "prune", "--older-than", "3d", "--json").stdout)["pruned"] == 0

        archive = tmp_path / "archive.jsonl"
        done = json.loads(zenaton(root, "prune", "--older-than", "1d", "--archive", str(archive), "--json").stdout)
        assert done["pruned"] == 5
        lines = archive.read_text().splitlines()
        views = [json.loads(line) for line in lines]
        assert {v["id"] for v in views} == plain and len(lines) == 5
        for view in views:
            assert view["status"] == "completed" and view["run"] == 1 and len(view["runs"]) == 1
            assert [s["kind"] for s in view["steps"]] == ["task", "completed"]
        # gone with everything they owned
        assert statuses(root) == {"running": 2, "killed": 1}
        for table in ("journal", "tasks", "inbox", "timers", "journal_archive"):
            owned = rows(root, f"SELECT count(*) FROM {table} WHERE instance_id IN (SELECT value FROM json_each(?))",
                         json.dumps(sorted(plain)))
            assert owned == [(0,)], table

        # the killed child of a running parent stays, and asking for it by id is refused
        assert zenaton(root, "inspect", child).returncode == 0
        by_id = zenaton(root, "prune", "--id", child, check=False)
        assert by_id.returncode == 1 and "parent" in by_id.stderr
        for unfinished in (parent, victim):
            by_id = zenaton(root, "prune", "--id", unfinished, check=False)
            assert by_id.returncode == 1 and "running, not finished" in by_id.stderr
        assert statuses(root) == {"running": 2, "killed": 1}

        # once the parent is finished too, both may go, by id
        zenaton(root, "kill", parent)
        daemon.wait_until(lambda: statuses(root).get("killed", 0) == 2, what="the parent killed")
        text = zenaton(root, "prune", "--id", parent, "--id", child).stdout
        assert "pruned 2 finished instance(s)" in text
        assert statuses(root) == {"running": 1}
        assert zenaton(root, "inspect", child, check=False).returncode != 0

        # vacuum needs the store to itself
        refused = zenaton(root, "vacuum", check=False)
        assert refused.returncode != 0 and "cannot vacuum while the daemon runs" in refused.stderr
    finally:
        assert daemon.stop() == 0
    vacuumed = json.loads(zenaton(root, "vacuum", "--json").stdout)
    assert vacuumed["auto_vacuum"] == "incremental" and vacuumed["after"] > 0
    assert rows(root, "PRAGMA integrity_check") == [("ok",)]
    assert "bytes before" in zenaton(root, "vacuum").stdout
    assert statuses(root) == {"running": 1}


def test_the_daemon_prunes_in_the_background_what_retention_lets_go(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with (root / "zenaton.toml").open("a") as toml:
        toml.write('\n[retention]\ncompleted = "1s"\nkilled = "30d"\n')
    daemon = Daemon(root).started()
    try:
        zenaton(root, "dispatch", "Victim", "v1")
        (victim,) = ids_of(root, "Victim")
        zenaton(root, "dispatch", "Victim", "v2")
        zenaton(root, "kill", victim)
        dispatch_plain(root, 20)
        pruned = 0
        while pruned < 20:  # the completed ones go a second after their last update, in batches
            line = daemon.expect(r"retention: pruned \d+ finished instance\(s\)", timeout=30)
            pruned += int(line.split("pruned ")[1].split()[0])
            assert "completed" in line and "killed" not in line
        assert pruned == 20
        assert statuses(root) == {"running": 1, "killed": 1}  # the killed one keeps for 30 days
        age(root, 31 * DAY)
        line = daemon.expect(r"retention: pruned 1 finished instance\(s\) \(killed 1\)", timeout=30)
        assert statuses(root) == {"running": 1}
        dispatch_plain(root, 3)  # steps go on
        daemon.wait_until(lambda: statuses(root) == {"running": 1}, what="3 more completed and pruned")
    finally:
        assert daemon.stop() == 0


def test_a_bad_retention_is_one_clear_line(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with (root / "zenaton.toml").open("a") as toml:
        toml.write('\n[retention]\ncompleted = "a month"\n')
    for command in (("prune",), ("start",)):
        result = zenaton(root, *command, check=False)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            f'error: {root / "zenaton.toml"}: retention.completed must be a positive duration like "90s", "15m",'
            f" \"12h\", \"30d\" or \"2w\", not 'a month'"
        ]


def test_prune_on_a_postgresql_store_beside_its_daemon(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    root = make_project(tmp_path, store_url=pg_url)

    def counts() -> dict[str, int]:
        listed = json.loads(zenaton(root, "list", "--json").stdout)
        found: dict[str, int] = {}
        for item in listed:
            found[item["status"]] = found.get(item["status"], 0) + 1
        return found

    daemon = Daemon(root).started()
    try:
        dispatch_plain(root, 3)
        zenaton(root, "dispatch", "Victim", "v1")
        daemon.wait_until(lambda: counts() == {"completed": 3, "running": 1}, what="3 completed")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE zenaton.instances SET updated_at = updated_at - %s", (2 * DAY,))
        archive = tmp_path / "pg.jsonl"
        done = json.loads(zenaton(root, "prune", "--older-than", "1d", "--archive", str(archive), "--json").stdout)
        assert done["pruned"] == 3 and len(archive.read_text().splitlines()) == 3
        assert counts() == {"running": 1}
        refused = zenaton(root, "vacuum", check=False)
        assert refused.returncode == 1 and "autovacuum" in refused.stderr
    finally:
        assert daemon.stop() == 0

"""`zenaton migrate --to postgresql://...`: a project's SQLite store copied into an empty
PostgreSQL database, checked, and run on from there; and the refusals."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.e2e import Daemon, make_project, zenaton
from tests.postgres_server import pg_server, pg_url  # noqa: F401  (fixtures: a server, a fresh database)
from zenaton_cli.commands.migrate import inspect_view
from zenaton_runtime.store.sqlite_to_postgres import TABLES, copy, verify


def cli_json(root: Path, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(zenaton(root, *args, "--json").stdout)


def store_of(root: Path) -> Path:
    return root / ".zenaton" / "zenaton.db"


def sqlite_rows(root: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(f"file:{store_of(root)}?mode=ro", uri=True) as conn:
        return {t: conn.execute(f"SELECT {', '.join(c)} FROM {t} ORDER BY 1, 2, 3").fetchall() for t, c in TABLES.items()}


def postgres_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        rows = {}
        for table, columns in TABLES.items():
            found = conn.execute(f"SELECT {', '.join(columns)} FROM zenaton.{table} ORDER BY 1, 2, 3").fetchall()
            if table == "instances":  # ready is a boolean there, 0/1 in SQLite
                ready = columns.index("ready")
                found = [(*r[:ready], int(r[ready]), *r[ready + 1 :]) for r in found]
            rows[table] = found
        return rows


def fails(root: Path, *args: str, match: str) -> str:
    result = zenaton(root, *args, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def test_a_store_with_every_kind_of_instance_moves_to_postgresql_and_runs_on_there(tmp_path: Path, pg_url: str) -> None:
    root = make_project(tmp_path)
    fail = root / "fail"
    env = {"FLOW_FAIL": str(fail)}
    fail.write_text("")
    daemon = Daemon(root, env=env).started()
    try:
        done = cli_json(root, "dispatch", "Sequential", "1")["id"]
        daemon.expect(f"Sequential {done[:8]}: completed")
        waiting = cli_json(root, "dispatch", "EventFlow", "ada")["id"]
        daemon.expect(f"EventFlow {waiting[:8]}: waiting for Ping")
        paused = cli_json(root, "dispatch", "EventFlow", "bob")["id"]
        daemon.expect(f"EventFlow {paused[:8]}: waiting for Ping")
        assert cli_json(root, "pause", paused)["status"] == "paused"
        killed = cli_json(root, "dispatch", "EventFlow", "carl")["id"]
        daemon.expect(f"EventFlow {killed[:8]}: waiting for Ping")
        assert cli_json(root, "kill", killed)["status"] == "killed"
        sleeper = cli_json(root, "dispatch", "Sleeper", "1")["id"]
        daemon.expect(f"Sleeper {sleeper[:8]}: waiting")
        broken = cli_json(root, "dispatch", "FragileFlow")["id"]
        daemon.expect(f"FragileFlow {broken[:8]}: paused")
        task = cli_json(root, "dispatch", "Fragile")["id"]
        daemon.expect(f"Fragile {task[:8]}: failed")
        parent = cli_json(root, "dispatch", "Parent")["id"]
        daemon.expect(f"Parent {parent[:8]}: completed")
        rewound = cli_json(root, "dispatch", "Sequential", "2")["id"]
        daemon.expect(f"Sequential {rewound[:8]}: completed")
        cli_json(root, "rewind", rewound, "--to-step", "2")
        daemon.expect(f"Sequential {rewound[:8]}: completed")
        cli_json(root, "schedule", "Sequential", "0 3 * * *", "7")
        # a daemon on the SQLite store: refused, nothing written
        fails(root, "migrate", "--to", pg_url, match="cannot migrate while the daemon runs")
        assert not any((postgres_table_rows(pg_url) or {}).values())
        timed = cli_json(root, "dispatch", "WaitWithTimeout", "dan")["id"]  # a timer 4 s away
        daemon.expect(f"WaitWithTimeout {timed[:8]}: waiting")
    finally:
        assert daemon.stop() == 0
    # unconsumed inbox items: what the CLI queues while no daemon runs
    zenaton(root, "send-event", "ada", "Ping", '"hello"')
    zenaton(root, "resume", paused)
    before = sqlite_rows(root)
    assert before["inbox"] and before["journal_archive"] and before["timers"] and before["schedules"]
    statuses = {r[7] for r in before["instances"]}
    assert [r[7] for r in before["instances"] if r[1] == timed] == ["running"]  # its timer still to fire
    assert {"completed", "running", "paused", "killed", "failed"} <= statuses

    result = cli_json(root, "migrate", "--to", pg_url)
    assert result["verified"] is True and result["differences"] == []
    assert result["rows"] == {t: len(rows) for t, rows in before.items()}
    assert result["instances_compared"] == len(before["instances"])
    assert postgres_rows(pg_url) == before  # every column, times and orders included
    assert sqlite_rows(root) == before  # only read

    # a second time: the target is no longer empty
    fails(root, "migrate", "--to", pg_url, match="is not empty")

    # the project on PostgreSQL: the daemon takes it from there
    (root / "zenaton.toml").write_text((root / "zenaton.toml").read_text() + f'\n[store]\nurl = "{pg_url}"\n')
    for instance in (done, waiting, paused, killed, sleeper, broken, task, parent, rewound):
        assert cli_json(root, "inspect", instance, "--all-runs")["id"] == instance
    fail.unlink()
    daemon = Daemon(root, env=env).started()
    try:
        daemon.expect(f"EventFlow {waiting[:8]}: completed")  # the event queued before the move
        daemon.wait_until(lambda: cli_json(root, "inspect", paused)["status"] == "running", what="resumed")
        zenaton(root, "send-event", "bob", "Ping", '"again"')
        daemon.expect(f"EventFlow {paused[:8]}: completed")
        cli_json(root, "retry", broken)
        daemon.expect(f"FragileFlow {broken[:8]}: completed")
        daemon.wait_until(lambda: cli_json(root, "inspect", timed)["status"] == "completed", what="timer fired")
        # a new instance gets the next insertion order and inbox id: nothing collides
        late = cli_json(root, "dispatch", "Sequential", "3")["id"]
        daemon.expect(f"Sequential {late[:8]}: completed")
    finally:
        assert daemon.stop() == 0
    view = cli_json(root, "inspect", waiting)
    assert view["status"] == "completed" and view["properties"]["pings"] == ["hello"]
    assert cli_json(root, "inspect", sleeper)["status"] == "running"  # its timer, a day away, kept
    assert cli_json(root, "inspect", killed)["status"] == "killed"
    assert cli_json(root, "inspect", timed)["properties"]["got"] is None  # it timed out, on PostgreSQL
    assert len(cli_json(root, "inspect", rewound, "--all-runs")["runs"]) == 2


def postgres_table_rows(url: str) -> dict[str, int] | None:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('zenaton.instances')").fetchone()[0] is None:  # type: ignore[index]
            return None
        return {t: conn.execute(f"SELECT count(*) FROM zenaton.{t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A project whose SQLite store holds two instances (no daemon ran) and two inbox items."""
    root = make_project(tmp_path)
    zenaton(root, "dispatch", "EventFlow", "ada")
    zenaton(root, "dispatch", "Sequential", "1")
    zenaton(root, "send-event", "ada", "Ping", '"one"')
    zenaton(root, "send-event", "ada", "Ping", '"two"')
    return root


def test_migrate_refuses_a_target_that_is_not_an_empty_postgresql_store(small: Path, pg_url: str) -> None:
    fails(small, "migrate", "--to", "sqlite:///elsewhere.db", match="needs a postgresql:// url")
    line = fails(small, "migrate", "--to", "postgresql://nobody:secret@127.0.0.1:1/nothing", match="cannot connect")
    assert "secret" not in line
    with psycopg.connect(pg_url, autocommit=True) as conn:  # another application's table in the schema
        conn.execute("CREATE SCHEMA zenaton")
        conn.execute("CREATE TABLE zenaton.accounts (id int)")
    fails(small, "migrate", "--to", pg_url, match="holds tables of another application")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA zenaton CASCADE")
    # a zenaton store with one row: refused, and left as it was
    other = make_project(small.parent / "other", store_url=pg_url)
    zenaton(other, "dispatch", "Sequential", "9")
    held = postgres_rows(pg_url)
    fails(small, "migrate", "--to", pg_url, match="is not empty (1 row(s) in instances")
    assert postgres_rows(pg_url) == held


def test_migrate_refuses_a_target_a_daemon_holds_and_a_project_already_on_postgresql(small: Path, pg_url: str) -> None:
    from zenaton_runtime.store.postgres_schema import DAEMON_LOCK

    empty = make_project(small.parent / "empty")  # nothing ever ran: no store yet
    fails(empty, "migrate", "--to", pg_url, match="no store at")
    assert postgres_table_rows(pg_url) is None  # the target not even touched
    with psycopg.connect(pg_url, autocommit=True) as daemon:  # what a daemon on the database holds
        daemon.execute("SELECT pg_advisory_lock_shared(%s)", (DAEMON_LOCK,))
        fails(small, "migrate", "--to", pg_url, match="a daemon runs on the PostgreSQL store")
    assert not any((postgres_table_rows(pg_url) or {}).values())
    on_postgresql = make_project(small.parent / "pg", store_url=pg_url)
    fails(on_postgresql, "migrate", "--to", pg_url, match="zenaton migrate copies a SQLite store")


def test_migrate_says_what_it_copied_and_what_to_do_next(small: Path, pg_url: str) -> None:
    printed = zenaton(small, "migrate", "--to", pg_url).stdout
    assert "2 instances" in printed and "2 inbox" in printed
    assert "checked: the same rows in every table, and the same view of all 2 instance(s)" in printed
    assert f'[store] url = "{pg_url}"' in printed and "zenaton start" in printed
    assert "[store]" not in (small / "zenaton.toml").read_text()  # never edited


def test_a_failure_during_the_copy_leaves_nothing_written(small: Path, pg_url: str) -> None:
    with sqlite3.connect(store_of(small)) as conn:  # PostgreSQL text holds no NUL character
        conn.execute("UPDATE inbox SET data = 'a' || char(0) || 'b' WHERE id = (SELECT max(id) FROM inbox)")
    fails(small, "migrate", "--to", pg_url, match="NUL character")
    assert not any((postgres_table_rows(pg_url) or {}).values())


def test_the_verification_names_the_instance_that_differs(small: Path, pg_url: str) -> None:
    copied = copy(store_of(small), pg_url)
    assert copied.rows["instances"] == 2
    assert verify(store_of(small), pg_url, inspect_view).ok
    (flow,) = [r[1] for r in sqlite_rows(small)["instances"] if r[3] == "EventFlow"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE zenaton.journal SET created_at = created_at + 1 WHERE instance_id = %s", (flow,))
    checked = verify(store_of(small), pg_url, inspect_view)
    assert not checked.ok and checked.differences == [f"instance {flow}: its journal differs"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE zenaton.instances SET status = 'paused' WHERE id = %s", (flow,))
    assert verify(store_of(small), pg_url, inspect_view).differences == [f"instance {flow}: its inspect view differs"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE zenaton.instances SET status = 'running' WHERE id = %s", (flow,))
        conn.execute("UPDATE zenaton.journal SET created_at = created_at - 1 WHERE instance_id = %s", (flow,))
        conn.execute("DELETE FROM zenaton.inbox WHERE id = (SELECT max(id) FROM zenaton.inbox)")
    assert verify(store_of(small), pg_url, inspect_view).differences == [
        "table inbox: 2 row(s) in SQLite, 1 in PostgreSQL",
        f"instance {flow}: its inbox differs",
    ]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what no record shows
        conn.execute("UPDATE zenaton.instances SET ready = NOT ready WHERE id = %s", (flow,))
    assert f"instance {flow}: its insertion order, ready flag or last seq differs" in verify(
        store_of(small), pg_url, inspect_view
    ).differences


def test_a_copy_that_does_not_check_out_is_removed_and_the_command_exits_1(
    small: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from zenaton_cli.main import cli
    from zenaton_runtime.store import sqlite_to_postgres

    real = sqlite_to_postgres.verify

    def corrupted(source: Path, url: str, view: sqlite_to_postgres.View) -> sqlite_to_postgres.Verification:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM zenaton.journal WHERE instance_id = (SELECT min(id) FROM zenaton.instances)")
        return real(source, url, view)

    monkeypatch.setattr(sqlite_to_postgres, "verify", corrupted)
    for variable in ("ZENATON_STORE_URL", "ZENATON_APP_ENV"):
        monkeypatch.delenv(variable, raising=False)
    args = ["--project", str(small), "migrate", "--to", pg_url, "--json"]
    result = CliRunner().invoke(cli, args, standalone_mode=False)  # as main() runs it: the exit code returned
    assert result.return_value == 1, result.output
    report = json.loads(result.stdout)
    assert report["verified"] is False and report["differences"][0] == "table journal: 2 row(s) in SQLite, 1 in PostgreSQL"
    assert not any((postgres_table_rows(pg_url) or {}).values())  # removed again: the target is empty
    assert json.loads(zenaton(small, "migrate", "--to", pg_url, "--json").stdout)["verified"] is True


def test_every_table_and_column_of_the_sqlite_store_is_copied(tmp_path: Path) -> None:
    from zenaton_runtime.store.sqlite import SQLiteStore

    SQLiteStore(tmp_path / "z.db").close()
    with sqlite3.connect(tmp_path / "z.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {t: tuple(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    skipped = {"schema_version", "daemons", "sqlite_sequence"}  # the daemons' records are not copied
    assert {t: sorted(c) for t, c in columns.items() if t not in skipped} == {t: sorted(c) for t, c in TABLES.items()}

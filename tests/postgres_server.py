"""A throwaway PostgreSQL server for the tests, and a fresh database for each test.

The session starts one server from Debian's binaries (`initdb` and `pg_ctl`, into a temporary
folder, on a free port of 127.0.0.1), or uses ZENATON_TEST_PG_URL when it is set (a server of
your own: each test still gets a database of its own on it). `initdb` refuses to run as root,
and CI runs as root: the server then runs as the `postgres` account the Debian package creates.

`pg_url` is a new, empty database; `pg_clean_url` is one database shared by the session, its
zenaton tables emptied before each test: for the many tests that need an empty store rather than
an empty database (the contract suite, the harness scenarios), without CREATE DATABASE each time.

Without PostgreSQL a test is skipped on a developer's machine, and fails under CI=true: CI
installs it (.ci/run), so a server that does not start there is a defect to see, not to hide.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ACCOUNT = "postgres"  # the unprivileged account that runs the server when the tests run as root


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the PostgreSQL tests need a server under CI: {reason}")
    pytest.skip(reason)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """initdb + pg_ctl in a temporary folder; stopped and removed at the end of the session."""

    def __init__(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            unavailable("PostgreSQL's initdb and pg_ctl are missing (apt-get install postgresql)")
        assert initdb and pg_ctl
        self.pg_ctl = pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="zenaton-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_account: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if not runuser:
                unavailable("running as root, and runuser is missing to start PostgreSQL as postgres")
            shutil.chown(self.folder, ACCOUNT, ACCOUNT)
            self.as_account = [runuser, "-u", ACCOUNT, "--"]
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder}"
        options += " -c max_connections=200 -c fsync=on -c synchronous_commit=on"
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_account, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            unavailable(f"{Path(command[0]).name} failed: {result.stderr.strip() or result.stdout.strip()} {tail}")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_account, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server (without a database name)."""
    given = os.environ.get("ZENATON_TEST_PG_URL")
    if given:
        yield given.rstrip("/").rsplit("/", 1)[0] if given.count("/") > 2 else given
        return
    server = Server()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped after the test."""
    try:
        import psycopg
    except ImportError as error:
        unavailable(f"psycopg is not installed ({error})")
    name = f"zt_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server}/{name}"
    finally:
        with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_shared_database(pg_server: str) -> Iterator[str]:
    """One database for the whole session, emptied before each test that uses it (pg_clean_url)."""
    try:
        import psycopg
    except ImportError as error:
        unavailable(f"psycopg is not installed ({error})")
    name = f"zt_shared_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server}/{name}"
    finally:
        with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_clean_url(_pg_shared_database: str) -> str:
    """A database whose zenaton tables (if any) are empty: the session's shared one, its rows
    deleted (a few milliseconds, where CREATE DATABASE takes a few hundred). For tests that need
    an empty store, not an empty database: migrations and refusals take pg_url.

    Connections a failed test left open are ended first (a daemon lock must not outlive its
    test), and a schema a failed test left altered (a trigger, a function, a check) is dropped:
    the next store creates it again."""
    import psycopg

    with psycopg.connect(_pg_shared_database, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (altered,) = conn.execute(
            "SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            "        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'zenaton' AND NOT t.tgisinternal)"
            " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'zenaton')"
            " + (SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace"
            "    JOIN pg_class c ON c.oid = k.conrelid"
            "    WHERE n.nspname = 'zenaton' AND k.contype = 'c' AND c.relname <> 'schema_version')"
        ).fetchone()
        if altered:
            conn.execute("DROP SCHEMA zenaton CASCADE")
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'zenaton' AND tablename != 'schema_version'"
        )]
        with conn.transaction():
            for table in tables:
                conn.execute(f'DELETE FROM zenaton."{table}"')
    return _pg_shared_database

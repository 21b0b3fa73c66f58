"""A password in the store's url stays out of the log, the views and the workers' command lines."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e import Daemon, make_project, zenaton
from tests.postgres_server import pg_server, pg_url  # noqa: F401  (fixtures: a server, a fresh database)

SECRET = "hunter2-not-shown"


def with_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{SECRET}@{host}"  # the test server trusts local connections: any password works


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_the_password_is_never_shown(tmp_path: Path, pg_url: str) -> None:
    root = make_project(tmp_path, store_url=with_password(pg_url))
    daemon = Daemon(root).started()
    try:
        instance = json.loads(zenaton(root, "dispatch", "Sequential", "3", "--json").stdout)["id"]
        daemon.wait_until(lambda: json.loads(zenaton(root, "inspect", instance, "--json").stdout)["status"] == "completed")
        workers = children(daemon.process.pid)
        assert workers  # the task workers, which reach the store too
        for pid in workers:
            assert SECRET not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        status = zenaton(root, "status", "--json").stdout
        doctor = zenaton(root, "doctor", "--json", check=False).stdout
    finally:
        assert daemon.stop() == 0
    started = next(line for line in daemon.log if "daemon started" in line)
    assert ":***@" in started and SECRET not in "\n".join(daemon.log)
    assert SECRET not in status and ":***@" in json.loads(status)["store"]
    assert SECRET not in doctor


def test_doctor_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    root = make_project(tmp_path, store_url=pg_url)
    zenaton(root, "dispatch", "Sequential", "1")
    report = json.loads(zenaton(root, "doctor", "--json", check=False).stdout)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["schema"]["verdict"] == "ok" and checks["schema"]["version"] == checks["schema"]["latest"]
    assert "data checksums" in checks["schema"]["detail"]
    assert checks["store"]["verdict"] == "ok" and checks["daemon"]["verdict"] == "warn"  # work waits, no daemon

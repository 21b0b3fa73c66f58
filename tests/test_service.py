"""`zenaton service install/uninstall` (a systemd unit) and the daemon telling systemd it is ready."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e import Daemon, make_project, zenaton
from zenaton_runtime.sdnotify import Notifier


def test_install_writes_a_unit_that_runs_this_projects_daemon(tmp_path: Path) -> None:
    root = make_project(tmp_path, grace=7.0)
    units = tmp_path / "units"
    result = zenaton(root, "service", "install", "--user", "--unit-dir", str(units))
    unit = units / "zenaton-e2e.service"
    text = unit.read_text()
    lines = set(text.splitlines())
    assert f"WorkingDirectory={root}" in lines and f"EnvironmentFile=-{root / '.env'}" in lines
    (start,) = [line for line in lines if line.startswith("ExecStart=")]
    assert start.endswith(f"zenaton start --project {root}") and start.split("=", 1)[1].startswith("/")
    assert {"Type=notify", "Restart=on-failure", "KillSignal=SIGTERM", "KillMode=mixed", "TimeoutStopSec=22"} <= lines
    assert "WantedBy=default.target" in lines  # a user unit
    assert f"wrote {unit}" in result.stdout
    assert "systemctl --user daemon-reload && systemctl --user enable --now zenaton-e2e.service" in result.stdout
    if shutil.which("systemd-analyze"):
        verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert verified.returncode == 0, verified.stderr
    system = zenaton(root, "--env", "prod", "service", "install", "--print").stdout
    assert "WantedBy=multi-user.target" in system and f"--project {root} --env prod" in system


def test_install_replaces_its_own_unit_and_refuses_anothers(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    units = tmp_path / "units"
    zenaton(root, "service", "install", "--user", "--unit-dir", str(units))
    zenaton(root, "service", "install", "--user", "--unit-dir", str(units))  # again: replaced
    foreign = units / "other.service"
    foreign.write_text("[Service]\nExecStart=/bin/true\n")
    refused = zenaton(root, "service", "install", "--user", "--unit-dir", str(units), "--name", "other", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == f"error: {foreign} exists and was not written by zenaton; remove it or choose another --name"
    assert foreign.read_text() == "[Service]\nExecStart=/bin/true\n"
    kept = zenaton(root, "service", "uninstall", "--user", "--unit-dir", str(units), "--name", "other", check=False)
    assert kept.returncode == 1 and "was not written by zenaton; left alone" in kept.stderr and foreign.exists()
    removed = zenaton(root, "service", "uninstall", "--user", "--unit-dir", str(units))
    assert not (units / "zenaton-e2e.service").exists() and "systemctl --user disable --now" in removed.stdout
    missing = zenaton(root, "service", "uninstall", "--user", "--unit-dir", str(units), check=False)
    assert missing.returncode == 1 and "no unit" in missing.stderr


def receive(sock: socket.socket, timeout: float = 30.0) -> dict[str, str]:
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_the_daemon_tells_systemd_it_is_ready_then_stopping(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        daemon = Daemon(root, env={"NOTIFY_SOCKET": address})
        ready = receive(listener)  # waits on the socket, as systemd does
        assert ready["READY"] == "1" and "running, 2 workers" in ready["STATUS"]
        daemon.expect("daemon started")
        assert daemon.stop() == 0
        stopping = receive(listener)
        assert stopping["STOPPING"] == "1"


def test_the_socket_is_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@nowhere-zenaton-test")
    notifier = Notifier.take_socket()
    assert "NOTIFY_SOCKET" not in os.environ  # the task workers will not inherit it
    assert notifier.send(READY="1") is False  # nobody listens: the daemon carries on
    assert Notifier(None).send(READY="1") is False

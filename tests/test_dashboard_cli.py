"""`zenaton dashboard` and `zenaton start --dashboard` as a user runs them: real processes, real HTTP."""
from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.dashboard_helpers import dash_root  # noqa: F401  (fixture)
from tests.e2e import Daemon, zenaton
from zenaton_cli.dashboard.access import load_token
from zenaton_runtime.project.config import load_config


def address(process: Daemon) -> str:
    return re.search(r"Zenaton dashboard: (http://\S+)", process.expect("Zenaton dashboard: "))[1]


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_dashboard_prints_its_address_with_the_token_and_serves_it(dash_root: Path) -> None:
    board = Daemon(dash_root, "--port", "0", command="dashboard")
    try:
        url = address(board)
        host, token = re.match(r"http://127\.0\.0\.1:\d+/\?token=(\S+)", url)[0], url.partition("token=")[2]
        assert token == load_token(load_config(dash_root).state_dir)
        base = url.partition("/?")[0]
        assert get(f"{base}/api/instances", "wrong")[0] == 401
        status, body = get(f"{base}/api/instances", token)
        assert status == 200 and json.loads(body) == {"instances": [], "next": None}
        assert host
    finally:
        assert board.stop() == 0


def test_new_token_replaces_the_old_one(dash_root: Path) -> None:
    old = load_token(load_config(dash_root).state_dir)
    board = Daemon(dash_root, "--port", "0", "--new-token", command="dashboard")
    try:
        url = address(board)
        new = url.partition("token=")[2]
        assert new != old and new == load_token(load_config(dash_root).state_dir)
        base = url.partition("/?")[0]
        assert get(f"{base}/api/instances", old)[0] == 401
        assert get(f"{base}/api/instances", new)[0] == 200
    finally:
        board.stop()


def test_a_port_in_use_is_one_clear_error(dash_root: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = zenaton(dash_root, "dashboard", "--port", str(port), check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip() == f"error: port {port} on 127.0.0.1 is already in use; choose another with --port"
        started = zenaton(dash_root, "start", "--dashboard", "--dashboard-port", str(port), check=False)
        assert started.returncode == 1
        assert f"error: the dashboard did not start: port {port} on 127.0.0.1 is already in use" in started.stderr
        assert "daemon started" not in started.stderr + started.stdout


def test_another_host_is_said_out_loud(dash_root: Path) -> None:
    board = Daemon(dash_root, "--host", "0.0.0.0", "--port", "0", command="dashboard")
    try:
        address(board)
        warning = board.expect("warning:")
        assert "listening on 0.0.0.0: other machines can reach it" in warning
    finally:
        board.stop()


def test_start_with_the_dashboard_serves_both_and_stops_both(dash_root: Path) -> None:
    daemon = Daemon(dash_root, "--dashboard", "--dashboard-port", "0")
    url = address(daemon)
    daemon.started()
    base, token = url.partition("/?")[0], url.partition("token=")[2]
    instance = json.loads(zenaton(dash_root, "dispatch", "Parent", "dee", "--json").stdout)["id"]
    daemon.wait_until(lambda: json.loads(get(f"{base}/api/instances/{instance}", token)[1])["status"] == "completed")
    status, page = get(f"{base}/instances/{instance}", token)
    assert status == 200 and b'id="status">completed<' in page
    assert daemon.stop() == 0
    with pytest.raises(urllib.error.URLError):  # the dashboard stopped with the daemon
        urllib.request.urlopen(f"{base}/", timeout=5)


def test_host_and_port_come_from_zenaton_toml(dash_root: Path) -> None:
    toml = dash_root / "zenaton.toml"
    original = toml.read_text()
    toml.write_text(original + "\n[dashboard]\nport = 70000\n")
    refused = zenaton(dash_root, "dashboard", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("dashboard.port must be from 0 to 65535, not 70000")
    toml.write_text(original + '\n[dashboard]\nhost = "localhost"\nport = 0\n')
    board = Daemon(dash_root, command="dashboard")
    try:
        assert re.match(r"http://localhost:\d+/\?token=", address(board))
    finally:
        board.stop()


def test_zenaton_toml_cannot_open_the_dashboard_to_the_network(dash_root: Path) -> None:
    toml = dash_root / "zenaton.toml"
    toml.write_text(toml.read_text() + '\n[dashboard]\nhost = "0.0.0.0"\nport = 0\n')
    refused = zenaton(dash_root, "dashboard", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "[dashboard] host = '0.0.0.0', beyond this machine" in refused.stderr
    assert "--host 0.0.0.0" in refused.stderr
    started = zenaton(dash_root, "start", "--dashboard", check=False)
    assert started.returncode == 1 and "the dashboard did not start" in started.stderr
    board = Daemon(dash_root, "--host", "0.0.0.0", command="dashboard")  # said on the command line: allowed
    try:
        address(board)
        assert "other machines can reach it" in board.expect("warning:")
    finally:
        board.stop()

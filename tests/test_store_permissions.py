"""The store a real process creates is private: .zenaton/ 0700, the database and its files 0600,
whatever the umask of the process that created it (the store contract test checks SQLiteStore
itself; this checks the daemon and the CLI creating a project's store)."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.e2e import ZENATON, Daemon, make_project, project_env


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("creator", ["daemon", "cli"])
def test_a_store_created_under_umask_0_is_private(tmp_path, creator):
    root = make_project(tmp_path)
    state = root / ".zenaton"
    assert not state.exists()
    if creator == "cli":
        subprocess.run([ZENATON, "dispatch", "Add", "1", "2"], cwd=root, env=project_env(root), check=True,
                       capture_output=True, preexec_fn=lambda: os.umask(0), timeout=60)
    previous = os.umask(0)  # the daemon inherits it
    try:
        daemon = Daemon(root)
    finally:
        os.umask(previous)
    try:
        daemon.started()
        if creator == "daemon":
            subprocess.run([ZENATON, "dispatch", "Add", "1", "2"], cwd=root, env=project_env(root), check=True,
                           capture_output=True, timeout=60)
        daemon.expect(r"Add \w+: completed")
        assert mode(state) == 0o700
        files = sorted(p.name for p in state.iterdir())
        assert "zenaton.db" in files and "zenaton.db.daemon.lock" in files, files
        for name in files:
            assert mode(state / name) == 0o600, (name, oct(mode(state / name)))
    finally:
        assert daemon.stop() == 0

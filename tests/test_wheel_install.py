"""The package as a new user gets it: a wheel built from this repository, installed into a
throwaway virtualenv, and a new project run with the real daemon from outside the checkout.

Nothing of the source checkout is importable there (no PYTHONPATH, cwd outside it, no editable
install), so this catches what the in-repository tests cannot: a module or data file missing
from the wheel, a generic top-level name (``runtime``, ``templates``, ``store``) that a user's
project would shadow or be shadowed by, a console script that does not start.

One wheel build and one virtualenv per session (module-scoped fixtures). pip fetches the
dependencies from the package index (its cache makes that quick after the first run).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"zenaton", "zenaton_runtime", "zenaton_cli"}
# Where each installed package's files come from (pyproject.toml, [tool.setuptools] package-dir);
# the longest prefix first.
SOURCE_DIRS = (
    ("zenaton_cli/templates/", "templates/"),
    ("zenaton_runtime/", "runtime/"),
    ("zenaton_cli/", "zenaton_cli/"),
    ("zenaton/", "zenaton/"),
)
ADA = {"email": "ada@example.com", "slack_id": "U1"}
TIMEOUT = 60


def run(*args: Any, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Runs a command; its stdout, or an assertion error with everything it printed."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def outside_env(venv: Path | None = None) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no active virtualenv, nothing of the checkout
    on PATH, no ZENATON_* variables; with ``venv``, its bin/ first on PATH (as after `activate`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
        and not k.startswith("ZENATON_")
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not _inside(Path(p), REPO)]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
    env["PATH"] = os.pathsep.join(path)
    return env


def _inside(path: Path, folder: Path) -> bool:
    try:
        resolved = path.resolve()
    except OSError:
        return False
    return resolved == folder or folder in resolved.parents


# -- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel` of the repository. setuptools builds in-tree (build/, *.egg-info) and puts
    whatever build/lib holds into the wheel, stale files included; DIST_EXTRA_CONFIG sends both
    to the temporary folder, so a leftover build/ cannot leak in and concurrent runs share nothing."""
    out = tmp_path_factory.mktemp("wheel")
    config = out / "setuptools.cfg"
    config.write_text(f"[build]\nbuild_base = {out / 'build'}\n\n[egg_info]\negg_base = {out}\n")
    env = {**outside_env(), "DIST_EXTRA_CONFIG": str(config), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out / "dist", REPO, cwd=out, env=env)
    (built,) = (out / "dist").glob("zenaton-*.whl")
    return built


def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def source_of(name: str) -> str:
    for installed, folder in SOURCE_DIRS:
        if name.startswith(installed):
            return folder + name[len(installed) :]
    raise AssertionError(f"{name} is in no package of the project")


def test_wheel_holds_the_three_packages_and_nothing_else(wheel: Path) -> None:
    names = wheel_files(wheel)
    dist_info = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    assert len(dist_info) == 1, dist_info
    (info,) = dist_info
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read(f"{info}/RECORD").decode().splitlines()
        top_level_txt = archive.read(f"{info}/top_level.txt").decode().split()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    recorded = {line.split(",")[0] for line in record if line}
    assert recorded == set(names)
    assert {n.split("/")[0] for n in recorded} - {info} == TOP_LEVEL
    assert set(top_level_txt) == TOP_LEVEL
    assert "zenaton = zenaton_cli.main:main" in entry_points

    packaged = [n for n in names if not n.startswith(f"{info}/")]
    # Every file is one of the repository's (so nothing stale from a build/ folder), and no
    # tests, benchmarks, caches or virtualenv came along.
    for name in packaged:
        assert (REPO / source_of(name)).is_file(), f"{name}: no {source_of(name)} in the repository"
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
    template_tests = "zenaton_cli/templates/project/tests/"  # the new project's own tests (zenaton init)
    for junk in ("tests/", "benchmarks/", "build/", ".venv", "docs/", "site/", ".zenaton/"):
        assert not any(junk in n for n in packaged if not n.startswith(template_tests)), junk
    assert f"{template_tests}test_welcome_flow.py" in packaged

    # ... and every module of those folders is in it, with the files `zenaton init` copies.
    wanted = set()
    for installed, folder in SOURCE_DIRS:
        root = REPO / folder
        for path in root.rglob("*"):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or "__pycache__" in relative or relative.endswith(".pyc"):
                continue
            if installed == "zenaton_cli/" and relative.startswith("templates/"):
                continue
            if path.suffix == ".py" or folder == "templates/":
                wanted.add(installed + relative)
    assert wanted - set(packaged) == set(), "missing from the wheel"
    assert "zenaton_cli/templates/project/boot.py" in packaged
    assert "zenaton_cli/templates/project/zenaton.toml" in packaged
    assert {"zenaton_cli/templates/dashboard/instance.html", "zenaton_cli/templates/dashboard/dashboard.js"} <= set(
        packaged
    )


# -- installed, and used as a new user would ----------------------------------------------------


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel (and its dependencies from the index) installed."""
    folder = tmp_path_factory.mktemp("venv")
    assert not _inside(folder, REPO), "the temporary folder must be outside the checkout"
    env = {**outside_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(sys.executable, "-m", "venv", folder, cwd=folder.parent, env=env)
    run(folder / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, cwd=folder.parent, env=env)
    return folder


def test_installed_distribution_has_only_its_own_top_level_names(venv: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.metadata as md, importlib.util as u, json, os, sys\n"
        "import zenaton, zenaton_cli, zenaton_runtime\n"
        "dist = md.distribution('zenaton')\n"
        "tops = sorted({f.parts[0] for f in dist.files if not f.parts[0].endswith('.dist-info')"
        " and not f.parts[0].startswith('..')})\n"
        "print(json.dumps({'tops': tops, 'path': sys.path, 'cwd': os.getcwd(),"
        " 'pythonpath': os.environ.get('PYTHONPATH'),"
        " 'files': [m.__file__ for m in (zenaton, zenaton_cli, zenaton_runtime)],"
        " 'templates': str(__import__('importlib.resources').resources.files('zenaton_cli.templates')),"
        " 'generic': {n: u.find_spec(n) is not None for n in ('runtime', 'templates', 'store', 'cli')}}))\n"
    )
    found = json.loads(run(venv / "bin" / "python", "-c", probe, cwd=tmp_path, env=outside_env(venv)))
    assert found["tops"] == sorted(TOP_LEVEL)
    assert found["pythonpath"] is None
    assert Path(found["cwd"]).resolve() == tmp_path.resolve()
    assert not any(entry and _inside(Path(entry), REPO) for entry in found["path"]), found["path"]
    for file in [*found["files"], found["templates"]]:
        assert _inside(Path(file), venv.resolve()), f"{file} is not the installed copy"
    assert found["generic"] == {"runtime": False, "templates": False, "store": False, "cli": False}


# The project's own modules named like parts of the engine: if the engine shadowed them (or
# they it), the workflow (in the daemon) or the task (in a worker) fails.
USER_FILES = {
    "runtime.py": '"""The project\'s own `runtime` module."""\nGREETING = "Welcome aboard"\n',
    "store.py": (
        '"""The project\'s own `store` module."""\n\n\n'
        "def file_receipt(receipt):\n"
        '    return {**receipt, "filed_in": "the project\'s store.py"}\n'
    ),
    "templates/__init__.py": "",
    "templates/email.py": 'SUBJECT = "{greeting}, {email}!"\n',
    "tasks/send_welcome_email.py": (
        "from zenaton.abstracts.task import Task\n"
        "from zenaton.traits.zenatonable import Zenatonable\n\n"
        "import runtime\n"
        "import store\n"
        "from templates.email import SUBJECT\n\n\n"
        "class SendWelcomeEmail(Task, Zenatonable):\n"
        "    def __init__(self, email):\n"
        "        self.email = email\n\n"
        "    def handle(self):\n"
        "        subject = SUBJECT.format(greeting=runtime.GREETING, email=self.email)\n"
        '        return store.file_receipt({"to": self.email, "status": "sent", "subject": subject})\n'
    ),
}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"the template's {path.name} changed: no {old!r} in it"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def user_project(venv: Path, tmp_path: Path) -> Path:
    run(venv / "bin" / "zenaton", "init", "myproject", cwd=tmp_path, env=outside_env(venv))
    root = tmp_path / "myproject"
    assert not _inside(root, REPO), "the project must be outside the checkout"
    assert (root / "zenaton.toml").is_file() and (root / "boot.py").is_file()
    for name, text in USER_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    flow = root / "workflows" / "welcome_flow.py"
    edit(
        flow,
        "from zenaton.abstracts.workflow import Workflow\n",
        "import runtime\nfrom zenaton.abstracts.workflow import Workflow\n",
    )
    edit(flow, "    def handle(self):\n", "    def handle(self):\n        self.greeting = runtime.GREETING\n")
    return root


class User:
    """`zenaton ...` typed in the project's folder, with the virtualenv activated."""

    def __init__(self, venv: Path, root: Path) -> None:
        self.zenaton = venv / "bin" / "zenaton"
        self.root = root
        self.env = outside_env(venv)

    def __call__(self, *args: str) -> str:
        return run(self.zenaton, *args, cwd=self.root, env=self.env, timeout=TIMEOUT + 30)

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))


class DaemonLog:
    """The daemon's output, read from its pipe as it comes: waiting is on its lines, never on sleeps."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: list[str] = []
        self._fd = process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self._pending = b""

    def expect(self, text: str, timeout: float = TIMEOUT) -> None:
        """Until a line containing ``text`` has been printed (from the start)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the daemon printed no {text!r} within {timeout} s:\n{self.text()}"
            if self._selector.select(remaining):
                chunk = os.read(self._fd, 65536)
                assert chunk, f"the daemon exited ({self.process.wait()}) before printing {text!r}:\n{self.text()}"
                self._pending += chunk
                *complete, self._pending = self._pending.split(b"\n")
                self.lines += [line.decode(errors="replace") for line in complete]

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def daemon(venv: Path, user_project: Path) -> Iterator[DaemonLog]:
    user = User(venv, user_project)
    process = subprocess.Popen(
        [str(user.zenaton), "start"],
        cwd=user_project,
        env=user.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield DaemonLog(process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_new_project_runs_welcome_flow_with_the_real_daemon(venv: Path, user_project: Path, daemon: DaemonLog) -> None:
    user = User(venv, user_project)
    assert "PYTHONPATH" not in user.env and not _inside(Path(user.zenaton), REPO)

    daemon.expect("zenaton daemon started")  # printed once it holds the store's lock
    assert user.json("status")["running"], daemon.text()

    instance_id = user.json("dispatch", "WelcomeFlow", json.dumps(ADA))["id"]
    result = subprocess.run(
        [str(user.zenaton), "wait", instance_id, "--timeout", str(TIMEOUT)],
        cwd=user_project,
        env=user.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 30,
    )
    view = user.json("inspect", instance_id)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{json.dumps(view, indent=2)}\n{daemon.text()}"
    assert f"WelcomeFlow {instance_id} is completed" in result.stdout

    assert view["name"] == "WelcomeFlow" and view["status"] == "completed", view
    receipt = {
        "to": "ada@example.com",
        "status": "sent",
        "subject": "Welcome aboard, ada@example.com!",
        "filed_in": "the project's store.py",
    }
    properties = view["properties"]
    assert properties["email"] == "ada@example.com" and properties["slack_id"] == "U1"
    assert properties["greeting"] == "Welcome aboard"  # the project's runtime.py, in the daemon
    assert properties["email_receipt"] == receipt  # its runtime, store and templates, in a worker
    assert properties["activated"] is False
    tasks = [(s["name"], s["status"]) for s in view["steps"] if s["kind"] == "task"]
    assert tasks == [("SendWelcomeEmail", "completed"), ("IntroduceUserThroughSlack", "completed")]
    (completed,) = [s for s in view["steps"] if s["kind"] == "completed"]
    assert completed["result"] == "introduced U1"

    (listed,) = user.json("list")
    assert listed["id"] == instance_id and listed["status"] == "completed"

    user("stop")
    daemon.expect("zenaton daemon stopped")
    assert daemon.process.wait(timeout=TIMEOUT) == 0, daemon.text()
    assert not user.json("status")["running"]


def test_the_dashboard_without_its_extra_says_how_to_install_it(venv: Path, user_project: Path) -> None:
    user = User(venv, user_project)
    result = subprocess.run(
        [str(user.zenaton), "dashboard"], cwd=user_project, env=user.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == 'error: the dashboard needs its extra: pip install "zenaton[dashboard]"'


def test_a_new_project_s_tests_pass_with_the_installed_pytest_plugin(venv: Path, tmp_path: Path) -> None:
    """The tests `zenaton init` writes use the zenaton_env fixture, which the installed wheel's
    pytest11 entry point provides: with pytest in the virtualenv, `pytest` passes in the project."""
    env = {**outside_env(venv), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "pytest", cwd=tmp_path, env=env)
    run(venv / "bin" / "zenaton", "init", "tested", cwd=tmp_path, env=env)
    out = run(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path / "tested", env=env)
    assert "3 passed" in out, out
    assert not (tmp_path / "tested" / ".zenaton").exists()  # no store: the kit's is in memory

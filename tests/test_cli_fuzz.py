"""CLI fuzzing: random and malformed names, ids, JSON arguments, cron strings and zenaton.toml.

Whatever it is given, `zenaton` never shows a traceback: it succeeds (0), or exits 1 with
one `error:` line, or 2 with click's usage message (`Error: ...`) or one `error:` line. Most inputs run
in-process through ``zenaton_cli.main.main`` (argv patched, stdout strict UTF-8 and stderr
backslash-escaping, as a real process has them); a handful run through the installed
executable. The inputs tried and the tracebacks seen (must be 0) are recorded in
tests/figures.py and shown in the terminal summary.

The fuzzed project is a copy of the test project in a directory with no zenaton.toml or
boot.py above it, so no input can reach another project's store. `start`, `listen`
(daemons), `init` (writes anywhere) and `wait` (blocks) are not fuzzed.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e import FLOWPROJ, ZENATON
from tests.figures import add
from zenaton_cli.main import main

FIGURES = "cli fuzz"
BLOCKED = {"start", "listen", "init", "wait"}
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

COMMANDS = ["dispatch", "list", "inspect", "find", "where-id", "errors", "schedule", "schedules", "unschedule",
            "pause", "resume", "kill", "retry", "send-event", "rewind", "status", "stop"]
OPTIONS = ["--json", "--name", "--arg", "--id", "--status", "--limit", "--step", "--output", "--all-runs", "--all",
           "--to-step", "--dry-run", "--all-envs", "--env", "--from-file", "-h", "--help", "--timeout", "--version"]
NAMES = ["Sequential", "EventFlow", "Ping", "Add", "Echo", "Long", "Sleeper", "Greeting", "Nope", "Workflow",
         "Task", "ChaosSequence", "Shifty", "object", "__class__", "flowlib.tasks.Add", "os:system"]
ODD = ["", " ", "-", "--", "-1", "0", "1e309", "nan", "NaN", "Infinity", "null", "[]", "{}", '{"a":', "[[[[",
       "'", '"', "\\", "%s", "{0}", "[red]x[/red]", "[/]", "\t\n", "é", "😀", "a" * 300, "../..", "/", "~",
       "\udcff", "caf\udce9", "\u202e", "\x7f", "\x1b[31m"]

text = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40)
token = st.one_of(st.sampled_from(COMMANDS + OPTIONS + NAMES + ODD), text)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


# -- running the CLI ------------------------------------------------------------------------


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """main() in this process; the exit code, stdout and stderr."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    saved_argv, saved_stdin = sys.argv, sys.stdin
    sys.argv, sys.stdin = ["zenaton", *argv], io.StringIO("")
    code: int | None = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException as error:  # escaped main(): the real executable would print a traceback
        add(FIGURES, "tracebacks")
        raise AssertionError(f"zenaton {argv!r} raised {error!r} out of main()") from error
    finally:
        sys.argv, sys.stdin = saved_argv, saved_stdin
    return code or 0, _read(out), _read(err)


def _read(stream: io.TextIOWrapper) -> str:
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", errors="replace")


def judge(argv: list[str], code: int, out: str, err: str) -> None:
    """0, or 1 with one `error:` line, or 2 with a usage message; never a traceback."""
    add(FIGURES, "inputs")
    if "Traceback" in out + err:
        add(FIGURES, "tracebacks")
        raise AssertionError(f"zenaton {argv!r} printed a traceback:\n{out}\n{err}")
    lines = err.strip().splitlines()
    one_error = len(lines) == 1 and lines[0].startswith("error: ")
    if "ZENATON_DEBUG=1" in err:  # main()'s catch-all ("unexpected X"): a bug of ours reached the user
        add(FIGURES, "unexpected errors")
        raise AssertionError(f"zenaton {argv!r}: {lines[0]}")
    if code == 1:
        assert one_error, f"zenaton {argv!r} exited 1 without one error line: {err!r}"
    elif code == 2:
        usage = any(line.startswith("Error: ") for line in lines)  # click's, with or without "Usage:" above
        assert one_error or usage, f"zenaton {argv!r} exited 2: {err!r}"
    else:
        assert code == 0, f"zenaton {argv!r} exited {code}: {err!r}"
    add(FIGURES, f"exit {code}")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the test project (with a few instances) as the working directory; the test
    project's modules are imported from the copy meanwhile and put back afterwards."""
    base = tmp_path_factory.mktemp("fuzz")
    for directory in (base, *base.parents):
        assert not (directory / "zenaton.toml").exists() and not (directory / "boot.py").exists(), directory
    root = base / "proj"
    shutil.copytree(FLOWPROJ, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "zenaton.toml").write_text('[project]\nname = "fuzz"\nenv = "dev"\n\n[store]\ndurability = "fast"\n')
    (base / "tomlproj").mkdir()
    saved = {n: m for n, m in sys.modules.items() if n == "boot" or n.partition(".")[0] == "flowlib"}
    for name in saved:
        del sys.modules[name]
    path, cwd = list(sys.path), os.getcwd()
    variables = {v: os.environ.pop(v) for v in ("ZENATON_APP_ID", "ZENATON_API_TOKEN", "ZENATON_APP_ENV",
                                                 "ZENATON_DEBUG") if v in os.environ}
    os.chdir(base)
    try:
        for args in (["dispatch", "Sequential", "1"], ["dispatch", "EventFlow", "ada"], ["dispatch", "Add", "1", "2"],
                     ["schedule", "Add", "0 8 * * *", "1"]):
            code, out, err = run_main(["--project", str(root), *args])
            assert code == 0, err
        yield root
    finally:
        os.chdir(cwd)
        os.environ.update(variables)
        for name in [n for n in sys.modules if n == "boot" or n.partition(".")[0] == "flowlib"]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = path


@pytest.fixture(scope="module")
def known(fuzzed: Path) -> list[str]:
    """Ids of the instances dispatched at the start (and prefixes, custom ids): the same all along."""
    code, out, _ = run_main(["--project", str(fuzzed), "list", "--json"])
    assert code == 0
    found = [item["id"] for item in json.loads(out)]
    return found + [i[:6] for i in found] + ["seq-1", "ada"]


# -- in-process fuzzing ----------------------------------------------------------------------


@FUZZ
@given(argv=st.lists(token, max_size=7).filter(lambda a: not BLOCKED & set(a)))
def test_random_command_lines(fuzzed, argv):
    full = ["--project", str(fuzzed), *argv]
    judge(full, *run_main(full))


@settings(FUZZ, max_examples=100)
@given(data=st.data(), command=st.sampled_from(
    ["inspect", "pause", "resume", "kill", "retry", "send-event", "rewind", "find", "unschedule", "dispatch"]))
def test_names_and_ids(fuzzed, known, data, command):
    ref = data.draw(st.one_of(st.sampled_from(known + NAMES + ODD), text), label="ref")
    name = data.draw(st.one_of(st.sampled_from(NAMES + ODD), text), label="name")
    argv = {
        "inspect": ["inspect", ref, "--name", name],
        "pause": ["pause", ref, "--name", name],
        "resume": ["resume", ref],
        "kill": ["kill", ref, "--json"],
        "retry": ["retry", ref],
        "send-event": ["send-event", ref, name, data.draw(st.sampled_from(ODD + ['"x"', "1"]))],
        "rewind": ["rewind", ref, "--to-step", data.draw(st.sampled_from(["0", "1", "-3", "99", "x", ""])), "--dry-run"],
        "find": ["find", name, ref],
        "unschedule": ["unschedule", ref],
        "dispatch": ["dispatch", name, ref],
    }[command]
    full = ["--project", str(fuzzed), *argv]
    judge(full, *run_main(full))


@settings(FUZZ, max_examples=60)
@given(
    name=st.sampled_from(["Sequential", "EventFlow", "Fanout", "Add", "Echo", "Long", "CustomId", "Greeting", "Ping"]),
    values=st.lists(st.one_of(json_value.map(json.dumps), text, st.sampled_from(ODD)), max_size=3),
    keywords=st.lists(st.tuples(st.one_of(st.sampled_from(["x", "a", "b", "value", "n", "1x", "", "tag"]), text),
                                st.one_of(json_value.map(json.dumps), text)), max_size=2),
    custom_id=st.one_of(st.none(), text, st.sampled_from(ODD)),
)
def test_json_arguments(fuzzed, name, values, keywords, custom_id):
    argv = ["--project", str(fuzzed), "dispatch", name, *values]
    for key, value in keywords:
        argv += ["--arg", f"{key}={value}"]
    if custom_id is not None:
        argv += ["--id", custom_id]
    judge(argv, *run_main(argv))
    event = ["--project", str(fuzzed), "send-event", "ada", "Ping", *values[:1], "--name", "EventFlow"]
    judge(event, *run_main(event))


CRON_PARTS = ["*", "*/5", "0", "59", "60", "-1", "1-5", "5-1", "1,2,3", ",", "MON", "jan", "L", "W", "#", "?",
              "*/0", "0/0", "1-", "99999999999999999999", "@daily", "@reboot", "0x10", "１"]


@settings(FUZZ, max_examples=100)
@given(cron=st.one_of(
    st.lists(st.sampled_from(CRON_PARTS), min_size=0, max_size=8).map(" ".join),
    text,
    st.lists(st.one_of(st.sampled_from(CRON_PARTS), text), max_size=7).map(" ".join),
))
def test_cron_strings(fuzzed, cron):
    argv = ["--project", str(fuzzed), "schedule", "Add", cron, "1", "--json"]
    judge(argv, *run_main(argv))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # str, int (JSON strings are TOML basic strings)


SAFE_STRINGS = st.one_of(
    st.sampled_from(["", "dev", "boot.py", "missing.py", "boot", "UTC", "Mars/Olympus", "full", "fast", "slow",
                     "sqlite:///.zenaton/zenaton.db", "sqlite:///other.db", "sqlite:///", "memory://",
                     "postgres://nowhere.invalid/db", "bogus://x", "127.0.0.1:4001", "zz_no_such_module"]),
    st.text(alphabet="abcxyz_-. ", max_size=12).map(lambda s: "zz_" + s),  # never an importable module or a path
)
SCALARS = st.one_of(st.booleans(), st.integers(), st.floats(), SAFE_STRINGS)
KEYS = {"project": ["name", "env", "boot", "module", "timezone"], "store": ["url", "durability"],
        "daemon": ["concurrency", "reload", "http", "cache_size", "stop_grace"]}


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    for section in draw(st.lists(st.sampled_from([*KEYS, "other", "project.sub"]), max_size=4)):
        lines.append(f"[{section}]")
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from(KEYS.get(section, ["x"]) + ["unknown", "a b"]))
            value = draw(st.one_of(SCALARS, st.lists(SCALARS, max_size=3)))
            lines.append(f"{key if ' ' not in key else json.dumps(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=120)
@given(content=st.one_of(toml_documents(), text, st.binary(max_size=60).map(lambda b: b.decode("latin-1"))),
       command=st.sampled_from([["list"], ["status", "--json"], ["errors"], ["schedules"], ["inspect", "abcdef"]]))
def test_zenaton_toml_contents(fuzzed, content, command):
    root = fuzzed.parent / "tomlproj"
    (root / "zenaton.toml").write_text(content, encoding="utf-8", errors="surrogateescape")
    argv = ["--project", str(root), *command]
    judge(argv, *run_main(argv))


# -- through the installed executable ------------------------------------------------------------


REAL = [
    ["dispatch", "No Such Flow"],
    ["dispatch", "Add"],
    ["dispatch", "Greeting"],
    ["dispatch", "Sequential", "1", "--arg", "=1"],
    ["inspect", "\udcff\udcfe"],  # bytes that are not UTF-8, as a shell passes them
    ["find", "Sequential", "caf\udce9"],
    ["schedule", "Add", "61 25 * * * * *", "1"],
    ["list", "--limit", "-1"],
    ["frobnicate"],
    ["send-event", "nobody-here", "Ping", "[1,"],
    ["rewind", "ada", "--to-step", "x"],
]


@pytest.mark.parametrize("argv", REAL, ids=[" ".join(a).encode("ascii", "backslashreplace").decode() for a in REAL])
def test_the_real_executable(fuzzed, argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENATON_")}
    args = [os.fsencode(a) for a in ["--project", str(fuzzed), *argv]]  # undecodable bytes go through as bytes
    result = subprocess.run([ZENATON.encode(), *args], cwd=fuzzed.parent, env=env, capture_output=True, timeout=60)
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    judge(["--project", str(fuzzed), *argv], result.returncode, out, err)
    assert result.returncode in (1, 2)


@pytest.mark.parametrize("variable", [b"ZENATON_APP_ENV", b"ZENATON_APP_ID"])
def test_environment_variables_that_are_not_utf8(fuzzed, variable):
    env = {k: v for k, v in os.environb.items() if not k.startswith(b"ZENATON_")}
    env[variable] = b"caf\xe9"
    result = subprocess.run([ZENATON.encode(), b"--project", os.fsencode(fuzzed), b"list"], cwd=fuzzed.parent,
                            env=env, capture_output=True, timeout=60)
    judge(["list", f"({variable.decode()} not UTF-8)"], result.returncode, result.stdout.decode(errors="replace"),
          result.stderr.decode(errors="replace"))
    assert result.returncode == 1


@settings(FUZZ, max_examples=50)
@given(content=st.one_of(st.binary(max_size=80), text.map(str.encode),
                         st.lists(st.sampled_from([b"ZENATON_APP_ENV=", b"ZENATON_APP_ID=", b"export ", b"=", b"'",
                                                   b'"', b"\\", b"\n", b"\xff", b"${X}", b"dev", b"#"]),
                                  max_size=8).map(b"".join)))
def test_dotenv_contents(fuzzed, content):
    root = fuzzed.parent / "tomlproj"
    (root / "zenaton.toml").write_text('[project]\nname = "dotenv"\n')
    (root / ".env").write_bytes(content)
    try:
        argv = ["--project", str(root), "status", "--json"]
        judge(argv, *run_main(argv))
    finally:
        (root / ".env").unlink()


@settings(FUZZ, max_examples=5)
@given(argv=st.lists(st.one_of(st.sampled_from(COMMANDS + NAMES + ODD[:20]), text), min_size=1, max_size=4)
       .filter(lambda a: not BLOCKED & set(a)))
def test_random_command_lines_through_the_real_executable(fuzzed, argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENATON_")}
    args = [os.fsencode(a) for a in ["--project", str(fuzzed), *argv]]
    result = subprocess.run([ZENATON.encode(), *args], cwd=fuzzed.parent, env=env, capture_output=True, timeout=60)
    judge(argv, result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))


def test_figures_are_recorded():
    """Runs last in this module: every input above was judged, none showed a traceback."""
    from tests.figures import FIGURES as ALL

    figures = ALL.get(FIGURES, {})
    print(f"cli fuzz: {figures}")
    assert figures.get("tracebacks", 0) == 0 and figures.get("unexpected errors", 0) == 0
    if figures.get("inputs", 0) < 500:
        pytest.skip("only part of the fuzzing ran: no figures to check")

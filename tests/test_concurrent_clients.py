"""Many client processes against one store while the daemon runs.

Plain scripts (as users write them) and the `zenaton` executable dispatch, race for the
same custom ids, send events, pause, resume and kill at the same moment. Nothing is lost
(every id a client got back exists and reaches its final state), each raced id has
exactly one winner, and no "database is locked" (nor anything else) reaches a client:
every client exits 0 with an empty stderr.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e import ZENATON, Daemon, make_project, project_env

HEADER = """
import json, random, sys, time
import boot
from zenaton.client import Client
from zenaton.exceptions import DuplicateIdError, InstanceStateError, UnknownInstanceError
from flowlib.chaos import Gate, Go, Plain, Victim
Client("e2e", "token", "dev")
args = json.loads(sys.argv[1])
Client().find_workflow(Gate, "warm-up")  # the store is open before the start
print("ready", flush=True)
sys.stdin.readline()  # every client starts at the same moment
"""

RACER = HEADER + """
keys = list(args["keys"])
random.Random(args["index"]).shuffle(keys)
keys += args.get("late", [])  # raced with the (slower) executable
won, plain = {}, []
for n, key in enumerate(keys):
    if args["many"]:
        (made,) = Client().dispatch_many([Gate(key)])
        if made is not None:
            won[key] = made
    else:
        try:
            Gate(key).dispatch()
            won[key] = None
        except DuplicateIdError:
            pass
    if n % 5 == 0:
        plain += Client().dispatch_many([Plain(f"{args['index']}-{n}")])
for key in args.get("victims", []):
    Victim(key).dispatch()
print(json.dumps({"won": won, "plain": plain}))
"""

CLI = HEADER + """
import subprocess
won, killed = {}, []
def run(*argv):
    return subprocess.run([args["exe"], *argv], capture_output=True, text=True, timeout=60)
for key in args["keys"]:
    result = run("dispatch", "Gate", key, "--json")
    if result.returncode == 0:
        won[key] = json.loads(result.stdout)["id"]
    elif result.returncode != 1 or "already has an unfinished instance" not in result.stderr \\
            or len(result.stderr.strip().splitlines()) != 1:
        sys.stderr.write(f"zenaton dispatch Gate {key}: exit {result.returncode}: {result.stderr}")
for key in args["victims"]:
    while True:
        result = run("kill", key, "--name", "Victim", "--json")
        if result.returncode == 0:
            killed.append(json.loads(result.stdout)["id"])
            break
        if "no instance" not in result.stderr:  # not dispatched yet: try again
            sys.stderr.write(f"zenaton kill {key}: exit {result.returncode}: {result.stderr}")
            break
        time.sleep(0.02)
print(json.dumps({"won": won, "killed": killed}))
"""

LISTENER = HEADER + """
ids = []
for key in args["keys"]:
    (made,) = Client().dispatch_many([Gate(key)])
    ids.append(made)
    Gate.where_id(key).send_event(Go(f"v-{key}"))
print(json.dumps({"ids": ids}))
"""

PAUSER = HEADER + """
from zenaton_runtime.client.control import default_runtime
control = default_runtime().control_api
paused = resumed = 0
for key in args["keys"]:
    while control.by_custom_id("Gate", key) is None:  # not dispatched yet
        time.sleep(0.01)
    try:
        Gate.where_id(key).pause()
        paused += 1
    except (InstanceStateError, UnknownInstanceError):  # finished already
        continue
    while True:  # until the daemon has applied the pause (or the instance finished first)
        status = control.by_custom_id("Gate", key).status.value
        if status == "paused":
            Gate.where_id(key).resume()
            resumed += 1
            break
        if status != "running":
            break
        time.sleep(0.01)
print(json.dumps({"paused": paused, "resumed": resumed}))
"""

KILLER = HEADER + """
killed = 0
for key in args["keys"]:
    while True:
        try:
            Victim.where_id(key).kill()
            killed += 1
            break
        except UnknownInstanceError:  # not dispatched yet
            time.sleep(0.01)
print(json.dumps({"kills": killed}))
"""

FINISHER = HEADER + """
for key in args["keys"]:
    Gate.where_id(key).send_event(Go(f"v-{key}"))
print(json.dumps({"sent": len(args["keys"])}))
"""


def client(root: Path, code: str, **args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(args)], cwd=root, env=project_env(root),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def start(*processes: subprocess.Popen[str]) -> None:
    """Once every client is ready (imports done, store open), let them all go at once."""
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", process.communicate()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()
        process.stdin = None


def finish(name: str, process: subprocess.Popen[str], daemon: Daemon, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"client {name} still running after {timeout} s: {process.communicate()}")
        daemon.pump(0.05)  # keep reading the daemon's log while the client works
    out, err = process.communicate()
    assert process.returncode == 0 and err == "", f"client {name} exited {process.returncode}:\n{err}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path, concurrency=2)


def test_concurrent_clients_lose_nothing_and_each_raced_id_has_one_winner(project):
    race = [f"race-{i}" for i in range(24)]
    late = ["late-0", "late-1"]  # first for the executable, last for one racer
    cli_race = late + race[:4]  # the executable races for these too
    listen = [f"listen-{i}" for i in range(10)]
    raced = race + late
    victims = [f"victim-{i}" for i in range(10)]
    daemon = Daemon(project).started()
    try:
        racers = {
            f"racer{i}": client(project, RACER, index=i, keys=race, many=i % 2 == 0,
                                victims=victims[i::4] if i < 4 else [], late=late if i == 0 else [])
            for i in range(4)
        }
        others = {
            "cli": client(project, CLI, keys=cli_race, victims=victims[8:], exe=ZENATON),
            "listener": client(project, LISTENER, keys=listen),
            "pauser": client(project, PAUSER, keys=race[::3] + listen[::2]),
            "killer": client(project, KILLER, keys=victims[:8]),
        }
        everyone = {**racers, **others}
        start(*everyone.values())
        # The raced instances wait for an event: none can finish (and free its id) before every
        # racer is done, so "exactly one winner per id" is the rule.
        outputs = {name: finish(name, process, daemon) for name, process in racers.items()}
        outputs["cli"] = finish("cli", others["cli"], daemon)
        finisher = client(project, FINISHER, keys=raced)
        start(finisher)
        for name in ("listener", "pauser", "killer"):
            outputs[name] = finish(name, others[name], daemon)
        outputs["finisher"] = finish("finisher", finisher, daemon)

        db = project / ".zenaton" / "zenaton.db"

        def settled() -> bool:
            with sqlite3.connect(db) as c:
                return c.execute("SELECT count(*) FROM instances WHERE status IN ('running', 'paused')").fetchone()[0] == 0

        daemon.wait_until(settled, timeout=60, what="every instance finished")
    finally:
        assert daemon.stop() == 0

    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT id, name, custom_id, status, error FROM instances").fetchall()
        results = {i: json.loads(d)["result"] for i, d in c.execute(
            "SELECT instance_id, data FROM journal WHERE type = 'completed'")}
    by_id = {r[0]: r for r in rows}
    gates = {r[2]: r for r in rows if r[1] == "Gate"}

    print({name: {k: (len(v) if isinstance(v, (list, dict)) else v) for k, v in o.items()} for name, o in outputs.items()})
    # Exactly one winner per raced id, among every racer and the executable; one instance each.
    winners: dict[str, list[str]] = {key: [] for key in raced}
    for name, output in outputs.items():
        for key, instance_id in output.get("won", {}).items():
            winners[key].append(name)
            if instance_id is not None:
                assert by_id[instance_id][2] == key
    assert {key: len(names) for key, names in winners.items()} == {key: 1 for key in raced}, winners
    assert sorted(r[2] for r in rows if r[1] == "Gate") == sorted(raced + listen)

    # Nothing lost: every id handed back exists and reached its final state.
    handed = [i for o in outputs.values() for i in o.get("plain", []) + o.get("ids", []) + o.get("killed", [])]
    handed += [i for o in outputs.values() for i in o.get("won", {}).values() if i is not None]
    assert handed and all(i in by_id for i in handed), [i for i in handed if i not in by_id]
    for key in raced + listen:
        instance_id, _, _, status, error = gates[key]
        assert status == "completed", (key, status, error)
        assert results[instance_id] == f"{key}/after:v-{key}"
    plains = [r for r in rows if r[1] == "Plain"]
    assert len(plains) == len([i for o in outputs.values() for i in o.get("plain", [])])
    assert all(r[3] == "completed" for r in plains)
    assert sorted((r[2], r[3]) for r in rows if r[1] == "Victim") == [(key, "killed") for key in sorted(victims)]
    assert outputs["killer"]["kills"] == 8 and len(outputs["cli"]["killed"]) == 2
    assert outputs["pauser"]["paused"] >= outputs["pauser"]["resumed"] >= 1
    assert not any("locked" in line for line in daemon.log)

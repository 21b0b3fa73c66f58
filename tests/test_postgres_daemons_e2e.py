"""Several `zenaton start` processes on one PostgreSQL database: they share the work, a killed
one's instances are taken over within its lease, a frozen one's late writes are refused, and the
crash loop holds with the kills alternating between two daemons.

The workload and its checks are the crash loop's (benchmarks/chaos_workload.py): sequences, a
Parallel, waits that a client sends events to, child workflows, automatic retries; every instance
must complete with the journal its code implies (so none is lost and no step result is recorded
twice), and each task run is matched against the kills.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg

from benchmarks.chaos_workload import Checker, CrashLoop, pump, unfinished
from tests.figures import record
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)

LEASE_TTL = 5.0  # the shortest the config allows with decision_timeout = 1
SETTINGS = f"decision_timeout = 1\nlease_ttl = {LEASE_TTL:g}\n"


def lease_of(url: str, pid: int) -> str:
    """The lease (the daemon record's id) of the daemon with this pid."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT id FROM zenaton.daemons WHERE pid = %s", (pid,)).fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def owned_by(url: str, lease: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM zenaton.instances WHERE owner = %s", (lease,)).fetchone()
    return int(row[0]) if row else 0


def runs_by_epoch(loop: CrashLoop) -> Counter[int]:
    return Counter(int(line.split(" ")[3]) for line in loop.runlog.read_text().splitlines())


def wait_for(loop: CrashLoop, condition: object, what: str, timeout: float = 60.0) -> float:
    """Pump the daemons' logs until ``condition()`` holds; the seconds it took."""
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - began < timeout, f"{what} within {timeout} s"
        pump(loop.running, 0.05)
    return time.monotonic() - began


def started_pair(tmp_path: Path, url: str, instances: int = 200) -> CrashLoop:
    loop = CrashLoop(tmp_path, instances=instances, kills=0, store_url=url, daemons=2, daemon_settings=SETTINGS)
    loop.start_daemons()
    for running in loop.running:
        loop.see_started(*running)
    loop.start_clients()
    return loop


def test_two_daemons_share_200_mixed_instances(tmp_path: Path, pg_clean_url: str) -> None:
    loop = started_pair(tmp_path, pg_clean_url)
    try:
        loop.finish(timeout=150)
    finally:
        loop.clean_up()
    Checker(loop).check()
    report = loop.report
    assert report.problems == [], "\n".join(report.problems[:40])
    assert report.lost == 0 and report.duplicate_results == 0 and report.instances_checked >= 200
    shares = runs_by_epoch(loop)
    total = sum(shares.values())
    record("two daemons on PostgreSQL", {"task_runs": total, "by_daemon": dict(shares), "seconds": round(report.seconds, 1)})
    assert set(shares) == {0, 1}
    assert all(n >= 0.2 * total for n in shares.values()), f"each daemon does at least 20% of the steps: {shares}"


def test_a_killed_daemons_instances_are_taken_over_within_its_lease(tmp_path: Path, pg_clean_url: str) -> None:
    loop = started_pair(tmp_path, pg_clean_url)
    try:
        victim = loop.running[1][1]
        lease = lease_of(pg_clean_url, victim.process.pid)
        wait_for(loop, lambda: loop.runlog.exists() and runs_by_epoch(loop)[1] >= 60, "the second daemon at work")
        assert owned_by(pg_clean_url, lease) > 0 and unfinished(loop.store) > 0  # killed midway
        loop.kill(1)
        killed = loop.running.pop(1)[1]
        assert killed.process.returncode == -signal.SIGKILL
        took = wait_for(loop, lambda: owned_by(pg_clean_url, lease) == 0, "the takeover", timeout=LEASE_TTL + 10)
        loop.finish(timeout=150)
    finally:
        loop.clean_up()
    record("takeover after SIGKILL", {"seconds": round(took, 2), "lease_ttl": LEASE_TTL})
    assert took <= LEASE_TTL + 2, f"taken over {took:.1f} s after the kill"
    assert any("took over" in line and "from daemons whose lease ran out" in line for line in loop.running[0][1].log)
    Checker(loop).check()
    assert loop.report.problems == [], "\n".join(loop.report.problems[:40])
    assert loop.report.lost == 0 and loop.report.duplicate_results == 0


def test_a_frozen_daemons_late_writes_are_refused_and_it_carries_on(tmp_path: Path, pg_clean_url: str) -> None:
    loop = started_pair(tmp_path, pg_clean_url, instances=120)
    frozen = loop.running[1][1]
    try:
        lease = lease_of(pg_clean_url, frozen.process.pid)
        wait_for(loop, lambda: loop.runlog.exists() and runs_by_epoch(loop)[1] >= 30, "the second daemon at work")
        os.kill(frozen.process.pid, signal.SIGSTOP)  # its workers run on: their outcomes wait in its pipes
        try:
            assert owned_by(pg_clean_url, lease) > 0
            survivor = loop.running[:1]
            began = time.monotonic()
            while owned_by(pg_clean_url, lease) > 0:  # its lease runs out; the other takes its instances
                assert time.monotonic() - began < LEASE_TTL + 10, "taken over"
                pump(survivor, 0.05)
        finally:
            os.kill(frozen.process.pid, signal.SIGCONT)
        wait_for(loop, lambda: any("lease expired: dropped" in line for line in frozen.log), "the frozen one noticing")
        assert owned_by(pg_clean_url, lease) == 0  # it never wrote as the owner of what it lost
        loop.finish(timeout=150)
    finally:
        loop.clean_up()
    # Awake, it either wrote a step first (refused whole: "lost N instance(s) to another daemon")
    # or renewed its lease first (refused: it dropped everything); either way it carried on.
    woke = [line for line in frozen.log if "to another daemon" in line or "lease expired: dropped" in line]
    assert woke and "lease expired: dropped" in woke[-1], frozen.log[-20:]
    Checker(loop, runs=False).check()  # its workers ran on while it was frozen: only the journals are judged
    assert loop.report.problems == [], "\n".join(loop.report.problems[:40])
    assert loop.report.lost == 0 and loop.report.duplicate_results == 0  # its daemon stopped cleanly too


def test_the_crash_loop_with_two_daemons_on_postgresql(tmp_path: Path, pg_clean_url: str) -> None:
    loop = CrashLoop(tmp_path, instances=40, kills=6, store_url=pg_clean_url, daemons=2, daemon_settings=SETTINGS)
    print(f"crash loop seed: {loop.seed} (replay with ZENATON_CHAOS_SEED={loop.seed})")
    report = loop.run(timeout=120)
    record("crash loop, PostgreSQL, two daemons", report.figures())
    assert report.problems == [], f"seed {loop.seed}:\n" + "\n".join(report.problems[:40])
    assert report.kills == 6 and report.lost == 0 and report.duplicate_results == 0
    assert report.instances_checked >= 40 and report.clients["dispatcher"] == "40 dispatched"

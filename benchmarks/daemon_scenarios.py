"""Scenarios against a real daemon subprocess: dispatch, events, recovery after kill -9, load.

Each scenario copies benchmarks/project into its own directory, writes its zenaton.toml,
runs `zenaton start --no-reload` there and drives it with client scripts (benchclient.py),
as a user would. Completion is seen by polling the store read-only (harness.StoreView).
Memory is the daemon process's own peak resident set (VmHWM), not its workers'.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from .harness import ZENATON, Daemon, StoreView, client, finish_client, make_project, project_env, start_client

TIMEOUT = 900.0  # seconds any one wait may take before the scenario fails


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits)


def dispatch(directory: Path, durability: str, concurrency: int, singles: int, bulk: int) -> dict[str, Any]:
    """Single dispatch() calls while the daemon runs; then bulk dispatch, by the CLI and by dispatch_many."""
    root = make_project(directory, f"dispatch-{durability}", durability, concurrency)
    view = StoreView(root)
    daemon = Daemon(root)
    try:
        daemon.wait_started()
        single = client(root, "single", str(singles))
        done = view.wait(lambda: view.completed() >= singles, TIMEOUT, f"{singles} completed", daemon)
        (root / "bulk.jsonl").write_text("[1]\n" * bulk)
        start = time.perf_counter()
        subprocess.run(
            [ZENATON, "dispatch", "Steps", "--from-file", "bulk.jsonl"], cwd=root, env=project_env(),
            check=True, capture_output=True, timeout=TIMEOUT,
        )
        cli_seconds = time.perf_counter() - start
        peak = daemon.peak_rss_mib()
    finally:
        daemon.stop()
    many = client(root, "bulk", str(bulk))  # the daemon is stopped now
    view.close()
    return {
        "single": {
            "count": singles,
            "seconds": _r(single["seconds"]),
            "dispatches_per_s": _r(singles / single["seconds"], 1),
            "all_completed_s": _r(done - single["start"]),
            "completed_per_s": _r(singles / (done - single["start"]), 1),
        },
        "bulk_cli": {
            "count": bulk,
            "how": "zenaton dispatch Steps --from-file FILE.jsonl, daemon running; wall time incl. CLI start",
            "seconds": _r(cli_seconds),
            "instances_per_s": _r(bulk / cli_seconds, 1),
        },
        "bulk_dispatch_many": {
            "count": bulk,
            "how": "Client().dispatch_many() of all of them in a script, daemon stopped; the call only",
            "seconds": _r(many["seconds"]),
            "instances_per_s": _r(bulk / many["seconds"], 1),
        },
        "daemon_peak_rss_mib": _r(peak, 1),
    }


def _dispatch_waiters(root: Path, view: StoreView, daemon: Daemon, count: int) -> dict[str, Any]:
    """Bulk-dispatch ``count`` Waiters and wait until the daemon has started every one (all wait)."""
    dispatched = client(root, "bulk", str(count), "--waiters")
    settled = view.wait(lambda: view.settled(count), TIMEOUT, f"{count} waiting", daemon)
    waiting = view.scalar("SELECT count(*) FROM journal WHERE type = 'wait_started'")
    if waiting != count:
        raise RuntimeError(f"{waiting} of {count} instances wait for their event: {view.counts()}")
    return {"dispatch_s": _r(dispatched["seconds"]), "all_waiting_s": _r(settled - dispatched["start"])}


def events(directory: Path, durability: str, concurrency: int, count: int) -> dict[str, Any]:
    """``count`` instances waiting on Wait(Go); memory; then an event to each, until all complete.

    The first ``sample`` events go by ``Waiter.where_id(key).send_event()`` (a lookup by custom
    id each), to measure that path; once those completed, the rest go by the Control API from one
    script (one lookup for all, then one transaction per event): the time from the first of
    those until every instance completed is the daemon's figure.
    """
    sample = max(1, count // 20)
    root = make_project(directory, f"events-{durability}", durability, concurrency)
    view = StoreView(root)
    daemon = Daemon(root)
    try:
        daemon.wait_started()
        setup = _dispatch_waiters(root, view, daemon, count)
        time.sleep(0.2)  # let the daemon settle after its last batch before reading its memory
        peak_waiting, rss_waiting = daemon.peak_rss_mib(), daemon.rss_mib()
        by_id = client(root, "events", str(sample))
        view.wait(lambda: view.completed() >= sample, TIMEOUT, f"{sample} completed", daemon)
        cpu_before = daemon.cpu_seconds()
        rest = count - sample
        sent = client(root, "events", str(rest), "--offset", str(sample), "--control")
        done = view.wait(lambda: view.completed() >= count, TIMEOUT, f"{count} completed", daemon)
        peak, cpu = daemon.peak_rss_mib(), daemon.cpu_seconds() - cpu_before
    finally:
        daemon.stop()
        view.close()
    return {
        "instances": count,
        **setup,
        "daemon_rss_mib_waiting": _r(rss_waiting, 1),
        "daemon_peak_rss_mib_waiting": _r(peak_waiting, 1),
        "where_id_events": sample,
        "where_id_events_per_s": _r(sample / by_id["seconds"], 1),
        "control_events": rest,
        "control_send_s": _r(sent["seconds"]),
        "control_events_per_s": _r(rest / sent["seconds"], 1),
        "all_completed_s": _r(done - sent["start"]),
        "completed_per_s": _r(rest / (done - sent["start"]), 1),
        "daemon_cpu_s_events": _r(cpu, 2),
        "daemon_peak_rss_mib": _r(peak, 1),
    }


def recovery(directory: Path, durability: str, concurrency: int, count: int) -> dict[str, Any]:
    """kill -9 with ``count`` waiting instances; their events queue up; restart and time the recovery."""
    root = make_project(directory, f"recovery-{durability}", durability, concurrency)
    view = StoreView(root)
    daemon = Daemon(root)
    try:
        daemon.wait_started()
        _dispatch_waiters(root, view, daemon, count)
    finally:
        daemon.kill9()
    try:
        unfinished = view.scalar("SELECT count(*) FROM instances WHERE status IN ('running', 'paused')")
        queued = client(root, "events", str(count), "--control")  # no daemon: they wait in the inbox
        daemon = Daemon(root)
        restart = daemon.started_wall
        try:
            started = daemon.wait_started()
            done = view.wait(lambda: view.completed() >= count, TIMEOUT, f"{count} completed", daemon)
            peak, cpu = daemon.peak_rss_mib(), daemon.cpu_seconds()
        finally:
            daemon.stop()
        first_write = view.scalar("SELECT min(created_at) FROM journal WHERE created_at >= ?", (restart,))
        first_step = view.scalar(
            "SELECT min(created_at) FROM journal WHERE type = 'task_completed' AND created_at >= ?", (restart,)
        )
        first_done = view.scalar("SELECT min(updated_at) FROM instances WHERE status = 'completed'")
    finally:
        view.close()
    return {
        "unfinished_at_kill": unfinished,
        "events_queued_while_down_s": _r(queued["seconds"]),
        "events_queued_per_s": _r(count / queued["seconds"], 1),
        "restart_to_started_s": _r(started),
        "restart_to_first_write_s": _r(first_write - restart),
        "restart_to_first_step_s": _r(first_step - restart),
        "restart_to_first_completed_s": _r(first_done - restart),
        "restart_to_all_completed_s": _r(done - restart),
        "completed_per_s": _r(count / (done - restart), 1),
        "daemon_cpu_s": _r(cpu, 2),
        "daemon_peak_rss_mib": _r(peak, 1),
    }


def load(directory: Path, durability: str, concurrency: int, count: int, processes: int = 4) -> dict[str, Any]:
    """``count`` single dispatch() calls from ``processes`` concurrent scripts while the daemon runs."""
    root = make_project(directory, f"load-{durability}", durability, concurrency)
    view = StoreView(root)
    daemon = Daemon(root)
    share = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    try:
        daemon.wait_started()
        start_at = time.time() + 1.0 + 0.3 * processes  # every script has opened its store by then
        scripts = [start_client(root, "single", str(n), "--start-at", repr(start_at)) for n in share]
        reports = [finish_client(script) for script in scripts]
        first, last = min(r["start"] for r in reports), max(r["end"] for r in reports)
        done = view.wait(lambda: view.completed() >= count, TIMEOUT, f"{count} completed", daemon)
        peak, cpu = daemon.peak_rss_mib(), daemon.cpu_seconds()
        counts = view.counts()
    finally:
        daemon.stop()
        view.close()
    return {
        "instances": count,
        "processes": processes,
        "dispatch_s": _r(last - first),
        "dispatches_per_s": _r(count / (last - first), 1),
        "slowest_process_s": _r(max(r["seconds"] for r in reports)),
        "all_completed_s": _r(done - first),
        "completed_per_s": _r(count / (done - first), 1),
        "all_complete": counts.get("completed", 0) == count and len(counts) == 1,
        "daemon_cpu_s": _r(cpu, 2),
        "daemon_peak_rss_mib": _r(peak, 1),
    }

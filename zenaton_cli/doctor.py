"""`zenaton doctor`'s checks: each says ok, warn or fail, with one line of detail.

They read, never write: the config, the project's code (imported, as the daemon would), the
store (opened; a SQLite file also read-only for its schema version and integrity check), the
disk, the daemon (its lock and its record in the store), and the unfinished instances that
nothing will move (stuck).
"""

from __future__ import annotations

import json
import platform
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zenaton
from zenaton.abstracts.event import Event
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.exceptions import ExternalError
from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.models import Entry, InstanceStatus, Kind
from zenaton_runtime.pidlock import lock_path, read_info
from zenaton_runtime.project.config import Config, load_config
from zenaton_runtime.project.loader import load_project
from zenaton_runtime.store import Store, open_store, redacted
from zenaton_runtime.store.schema import LATEST
from zenaton_runtime.store.sqlite_backup import check as check_store_file

OK, WARN, FAIL = "ok", "warn", "fail"
GRACE = 60.0  # seconds past which work the daemon should have done counts as stuck
MAX_EXAMINED = 2000  # running instances read for the stuck check (the newest)
LOW_DISK = 1 << 30  # bytes: a warning below
NO_DISK = 100 << 20  # bytes: a failure below


@dataclass
class Check:
    name: str
    verdict: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Doctor:
    """Runs the checks in order; a check that needs what failed before it is skipped (failed)."""

    project: Path | None
    env: str | None
    task_age: float = 3600.0
    checks: list[Check] = field(default_factory=list)
    config: Config | None = None
    store: Store | None = None

    def run(self) -> list[Check]:
        steps: list[Callable[[], Check]] = [
            self.check_config,
            self.check_code,
            self.check_store,
            self.check_schema,
            self.check_disk,
            self.check_daemon,
            self.check_stuck,
            self.check_versions,
        ]
        for step in steps:
            try:
                self.checks.append(step())
            except Exception as error:  # a check that cannot run says why, and the others go on
                said = str(error) if isinstance(error, (ZenatonError, ExternalError)) else repr(error)
                self.checks.append(Check(step.__name__.removeprefix("check_"), FAIL, said))
        if self.store is not None:
            self.store.close()
        return self.checks

    @property
    def healthy(self) -> bool:
        return all(c.verdict != FAIL for c in self.checks)

    def check_config(self) -> Check:
        self.config = load_config(self.project, env=self.env)
        c = self.config
        where = "zenaton.toml" if c.has_config_file else "defaults (no zenaton.toml)"
        return Check("config", OK, f"{where} at {c.root}, env {c.env}, store {redacted(c.store_url)}")

    def check_code(self) -> Check:
        c = self._config()
        loaded = load_project(c.root, c.boot, c.module)
        kinds = {
            label: sorted(n for n, cls in loaded.classes.items() if issubclass(cls, base))
            for label, base in (("workflows", Workflow), ("tasks", Task), ("events", Event))
        }
        counts = ", ".join(f"{len(names)} {label}" for label, names in kinds.items())
        if not kinds["workflows"] and not kinds["tasks"]:
            return Check("code", FAIL, f"the project imports, but defines no workflow or task ({c.boot or c.module})")
        return Check("code", OK, f"imports: {counts}", kinds)

    def check_store(self) -> Check:
        c = self._config()
        self.store = open_store(c.store_url, durability=c.durability)
        counts = self.store.counts()
        total = sum(v for k, v in counts.items() if k != "tasks_queued")
        return Check("store", OK, f"opens: {total} instance(s), {counts.get('tasks_queued', 0)} task(s) queued", counts)

    def check_schema(self) -> Check:
        c = self._config()
        if c.store_url.startswith(("postgresql://", "postgres://")):
            return self._postgres_schema(c.store_url)
        if not c.store_url.startswith("sqlite:///"):
            return Check("schema", OK, "kept in memory: nothing on disk to check")
        found = check_store_file(Path(c.store_url[len("sqlite:///") :]))
        verdict = OK if found.version == LATEST else WARN
        detail = f"schema version {found.version} (this zenaton: {LATEST}), integrity_check ok"
        return Check("schema", verdict, detail, {"version": found.version, "latest": LATEST})

    @staticmethod
    def _postgres_schema(url: str) -> Check:
        """The schema version, and whether the server checksums its pages (PostgreSQL's own
        integrity check: a damaged page is an error when it is read)."""
        import psycopg

        from zenaton_runtime.store.postgres_schema import LATEST as PG_LATEST
        from zenaton_runtime.store.postgres_schema import current_version

        with psycopg.connect(url, connect_timeout=10) as conn:
            version = current_version(conn) or 0
            checksums = conn.execute("SHOW data_checksums").fetchone()
        verdict = OK if version == PG_LATEST else WARN
        sums = "on" if checksums and checksums[0] == "on" else "off (initdb --data-checksums turns them on)"
        detail = f"schema version {version} (this zenaton: {PG_LATEST}), data checksums {sums}"
        return Check("schema", verdict, detail, {"version": version, "latest": PG_LATEST})

    def check_disk(self) -> Check:
        c = self._config()
        folder = Path(c.store_url[len("sqlite:///") :]).parent if c.store_url.startswith("sqlite:///") else c.root
        usage = shutil.disk_usage(folder if folder.exists() else c.root)
        free = usage.free
        verdict = FAIL if free < NO_DISK else WARN if free < LOW_DISK or free < usage.total * 0.05 else OK
        detail = f"{free / (1 << 30):.1f} GiB free of {usage.total / (1 << 30):.1f} GiB at {folder}"
        return Check("disk", verdict, detail, {"free": free, "total": usage.total})

    def check_daemon(self) -> Check:
        c, store = self._config(), self._store()
        now = time.time()
        info = read_info(lock_path(c))
        records = store.daemons()
        alive = [r for r in records if r.alive(now)]
        if alive:
            r = alive[0]
            age = now - r.heartbeat_at
            detail = (
                f"alive: pid {r.pid} on {r.host}, {r.workers} workers ({r.busy_workers} busy), {r.steps} steps, "
                f"last heartbeat {age:.1f} s ago" + (f"; {len(alive) - 1} more daemon(s)" if len(alive) > 1 else "")
            )
            return Check("daemon", OK, detail, {"pid": r.pid, "workers": r.workers, "steps": r.steps})
        if info is not None:
            return Check("daemon", FAIL, f"pid {info.pid} holds the daemon's lock but writes no heartbeat: hung?")
        counts = store.counts()
        waiting = counts.get("running", 0) + counts.get("tasks_queued", 0)
        if waiting:
            return Check("daemon", WARN, f"not running: {counts.get('running', 0)} running instance(s) wait for it")
        return Check("daemon", OK, "not running (nothing unfinished)")

    def check_stuck(self) -> Check:
        store, now = self._store(), time.time()
        daemon_alive = any(r.alive(now) for r in store.daemons())
        running = store.list_instances(status=InstanceStatus.RUNNING, kind=Kind.WORKFLOW.value, limit=MAX_EXAMINED)
        stuck: list[dict[str, str]] = []
        old_tasks: list[str] = []
        for instance in running:
            reason = self._stuck(store, instance.id, now, daemon_alive)
            if reason:
                stuck.append({"id": instance.id, "name": instance.name, "reason": reason})
        for instance in store.list_instances(status=InstanceStatus.RUNNING, limit=MAX_EXAMINED):
            for task in store.open_tasks_of(instance.id):
                if task.status.value == "running" and now - task.run_at > self.task_age:
                    old_tasks.append(f"{task.name} of {instance.id[:8]}")
        examined = f"{len(running)} running workflow(s) examined" + (
            f" (the newest {MAX_EXAMINED})" if len(running) == MAX_EXAMINED else ""
        )
        data = {"stuck": stuck, "long_tasks": old_tasks}
        if stuck:
            first = "; ".join(f"{s['name']} {s['id'][:8]}: {s['reason']}" for s in stuck[:3])
            return Check("stuck", FAIL, f"{len(stuck)} stuck instance(s): {first} ({examined})", data)
        if old_tasks:
            hours = self.task_age / 3600
            return Check("stuck", WARN, f"{len(old_tasks)} task(s) running for over {hours:g} h: {old_tasks[:3]}", data)
        return Check("stuck", OK, f"none ({examined})", data)

    def _stuck(self, store: Store, instance_id: str, now: float, daemon_alive: bool) -> str | None:
        """Why nothing will move this running workflow, or None when something will."""
        if store.open_tasks_of(instance_id):
            return None
        inbox = store.inbox(instance_id)
        if inbox:
            oldest = min(item.created_at for item in inbox)
            return f"a request waits since {now - oldest:.0f} s" if daemon_alive and now - oldest > GRACE else None
        journal = store.journal(instance_id)
        last = next((e for e in reversed(journal) if e.position is not None), None)
        if last is None:
            return None
        data = json.loads(last.data) if last.data else {}
        if last.type is Entry.WAIT_STARTED:
            fire = data.get("fire_at")
            if fire is not None and daemon_alive and now - fire > GRACE:
                return f"its wait (step {last.position}) should have ended {now - fire:.0f} s ago"
            return None
        if last.type is Entry.TASK_SCHEDULED:
            return f"step {last.position} ({last.name}) has no task to run"
        if last.type is Entry.DISPATCHED and data.get("wait"):
            child = store.get_instance(data.get("id", ""))
            if child is None:
                return f"it waits on child {str(data.get('id'))[:8]}, which does not exist"
            if child.status.finished and now - child.updated_at > GRACE:
                return f"it waits on child {child.id[:8]}, {child.status.value} {now - child.updated_at:.0f} s ago"
        return None

    def check_versions(self) -> Check:
        versions = {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "zenaton": zenaton.__version__,
        }
        return Check("versions", OK, ", ".join(f"{k} {v}" for k, v in versions.items()), versions)

    def _config(self) -> Config:
        if self.config is None:
            raise RuntimeError("needs the config, which did not load")
        return self.config

    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("needs the store, which did not open")
        return self.store

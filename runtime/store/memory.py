"""The in-memory backend: the SQLite semantics in plain Python structures.

For unit tests and in-process helpers. One lock guards everything; ``commit_step`` and
every other write are all-or-nothing through an undo log that is replayed
backwards when an op fails. The batch ops themselves are ``memory_ops.py``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Hashable, MutableMapping
from typing import Any

from zenaton_runtime.errors import NotFoundError
from zenaton_runtime.models import (
    OPEN_TASKS,
    InboxItem,
    InboxKind,
    Instance,
    InstanceStatus,
    JournalEntry,
    Kind,
    TaskRecord,
    TaskStatus,
    Timer,
)
from zenaton_runtime.store.memory_monitoring import MemoryMonitoring
from zenaton_runtime.store.memory_ops import MemoryOps
from zenaton_runtime.store.memory_prune import MemoryPrune
from zenaton_runtime.store.memory_rewind import MemoryRewind
from zenaton_runtime.store.memory_schedules import MemorySchedules
from zenaton_runtime.store.ops import (
    Batch,
    NewEntry,
)
from zenaton_runtime.store.pending import PendingCommit
from zenaton_runtime.store.single_daemon import SingleDaemonLeases

_MISSING: Any = object()


class MemoryStore(MemoryOps, MemorySchedules, MemoryRewind, MemoryMonitoring, MemoryPrune, SingleDaemonLeases):
    """The Store protocol in memory; safe to share between threads."""

    def __init__(self, now: Callable[[], float] = time.time):
        self.now = now
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] | None = None
        self._instances: dict[str, Instance] = {}
        self._order: dict[str, int] = {}  # insertion number, the tie-breaker for equal created_at
        self._ready: dict[str, bool] = {}  # only ready ids, as keys
        self._journal: dict[str, list[JournalEntry]] = {}
        self._tasks: dict[str, TaskRecord] = {}  # in insertion order
        self._tasks_of: dict[str, list[str]] = {}
        self._timers: dict[tuple[str, int], Timer] = {}
        self._inbox: dict[str, dict[int, InboxItem]] = {}
        self._custom_ids: dict[tuple[str, str, str], str] = {}  # unfinished workflows' (env, name, custom id)
        self._counters = {"instance": 0, "inbox": 0}
        self._other_writes = 0  # writes other than the engine's steps (see changes)

    # -- undo log ------------------------------------------------------------
    def _write(self, fn: Callable[[], Any], *, step: bool = False) -> Any:
        with self._lock:
            if not step:
                self._other_writes += 1
            self._undo = []
            try:
                return fn()
            except BaseException:
                for undo in reversed(self._undo):
                    undo()
                raise
            finally:
                self._undo = None

    def _set(self, mapping: MutableMapping[Any, Any], key: Hashable, value: Any) -> None:
        old = mapping.get(key, _MISSING)
        mapping[key] = value
        assert self._undo is not None
        self._undo.append(lambda: _restore(mapping, key, old))

    def _del(self, mapping: MutableMapping[Any, Any], key: Hashable) -> None:
        if key in mapping:
            old = mapping.pop(key)
            assert self._undo is not None
            self._undo.append(lambda: mapping.__setitem__(key, old))

    def _push(self, items: list[Any], item: Any) -> None:
        items.append(item)
        assert self._undo is not None
        self._undo.append(items.pop)

    def _next(self, counter: str) -> int:
        self._set(self._counters, counter, self._counters[counter] + 1)
        return self._counters[counter]

    def _require(self, instance_id: str) -> Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise NotFoundError(f"no instance with id {instance_id!r}")
        return instance

    # -- clients -------------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        self._write(lambda: self._op_create_instance(instance, started, task, skip_duplicate=False))

    def create_instances(self, records: list[tuple[Instance, NewEntry, TaskRecord | None]]) -> list[bool]:
        return list(self._write(lambda: [self._op_create_instance(*r, skip_duplicate=True) for r in records]))

    def get_instance(self, instance_id: str) -> Instance | None:
        with self._lock:
            return self._instances.get(instance_id)

    def list_instances(
        self,
        *,
        env: str | None = None,
        name: str | None = None,
        status: InstanceStatus | None = None,
        custom_id: str | None = None,
        kind: str | None = None,
        id_prefix: str | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Instance]:
        """Matching instances, newest first (created_at, then insertion order); ``before``: older
        than that instance in this order."""
        wanted = {
            "env": env,
            "name": name,
            "custom_id": custom_id,
            "parent_id": parent_id,
            "status": None if status is None else InstanceStatus(status),
            "kind": None if kind is None else Kind(kind),
        }
        wanted = {k: v for k, v in wanted.items() if v is not None}
        with self._lock:
            found = [
                i
                for i in self._instances.values()
                if all(getattr(i, k) == v for k, v in wanted.items()) and (not id_prefix or i.id.startswith(id_prefix))
            ]
            if before is not None:
                cursor = self._instances.get(before)
                if cursor is None:
                    return []
                key = (cursor.created_at, self._order[before])
                found = [i for i in found if (i.created_at, self._order[i.id]) < key]
            found.sort(key=lambda i: (i.created_at, self._order[i.id]), reverse=True)
        return found if limit is None else found[: max(limit, 0)]

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        with self._lock:
            entries = self._journal.get(instance_id, [])
            return entries[max(after_seq, 0) :]  # entry n has seq n + 1

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """The instance's tasks in creation order."""
        with self._lock:
            return [self._tasks[t] for t in self._tasks_of.get(instance_id, [])]

    def open_tasks_of(self, instance_id: str) -> list[TaskRecord]:
        return [t for t in self.tasks_of(instance_id) if t.status in OPEN_TASKS]

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        return int(self._write(lambda: self._op_post(instance_id, InboxKind(kind), name, data)))

    def get_instances(self, instance_ids: list[str]) -> dict[str, Instance]:
        with self._lock:
            return {i: self._instances[i] for i in instance_ids if i in self._instances}

    def journal_length(self, instance_id: str) -> int | None:
        with self._lock:
            return len(self._journal.get(instance_id, [])) if instance_id in self._instances else None

    def inboxes(self, instance_ids: list[str]) -> dict[str, list[InboxItem]]:
        with self._lock:
            return {i: sorted(self._inbox.get(i, {}).values(), key=lambda item: item.id) for i in instance_ids}

    def inbox(self, instance_id: str) -> list[InboxItem]:
        with self._lock:
            return sorted(self._inbox.get(instance_id, {}).values(), key=lambda item: item.id)

    def counts(self) -> dict[str, int]:
        with self._lock:
            result = {s.value: 0 for s in InstanceStatus}
            for instance in self._instances.values():
                result[InstanceStatus(instance.status).value] += 1
            result["tasks_queued"] = sum(1 for t in self._tasks.values() if t.status == TaskStatus.QUEUED)
            return result

    # -- daemon --------------------------------------------------------------
    def ready_instances(self, limit: int) -> list[str]:
        with self._lock:
            ready = sorted(self._ready, key=lambda i: (self._instances[i].created_at, self._order[i]))
        return ready[: max(limit, 0)]

    def commit_step(
        self, batch: Batch, now: float, limit: int, *, only_added: bool = False, background: bool = False
    ) -> PendingCommit:
        """All or nothing, done when it returns (``only_added`` and ``background`` change nothing
        here: the claim finds the same tasks, and there is no commit to overlap)."""

        def run() -> list[TaskRecord]:
            self._apply_ops(batch)
            return self._claim(now, limit)

        return PendingCommit.done(list(self._write(run, step=True)))

    def changes(self) -> object:
        return self._other_writes

    def wakeup_fd(self) -> int | None:
        """None: a memory store is written in its own process only."""
        return None

    def settle(self) -> None:
        """Nothing to wait for: every write here is done when it returns."""

    def _claim(self, now: float, limit: int) -> list[TaskRecord]:
        due = [t for t in self._tasks.values() if t.status == TaskStatus.QUEUED and t.run_at <= now and self._runs(t)]
        due.sort(key=lambda t: t.run_at)  # stable: insertion order among equal run_at
        claimed = []
        for task in due[: max(limit, 0)]:
            task = dataclasses.replace(task, status=TaskStatus.RUNNING, attempts=task.attempts + 1)
            self._set(self._tasks, task.id, task)
            claimed.append(task)
        return claimed

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        """Timers with fire_at <= now, earliest first; they stay until deleted."""
        with self._lock:
            due = sorted(
                (t for t in self._timers.values() if t.fire_at <= now),
                key=lambda t: (t.fire_at, t.instance_id, t.position),
            )
        return due[: max(limit, 0)]

    def _runs(self, task: TaskRecord) -> bool:
        """Tasks of a paused instance stay queued: a pause starts nothing new, retries included."""
        instance = self._instances.get(task.instance_id)
        return instance is not None and instance.status == InstanceStatus.RUNNING

    def next_due(self, after: float) -> float | None:
        with self._lock:
            times = [t.fire_at for t in self._timers.values() if t.fire_at > after]
            times += [
                t.run_at
                for t in self._tasks.values()
                if t.status == TaskStatus.QUEUED and t.run_at > after and self._runs(t)
            ]
            times += [s.next_fire for s in self._schedules.values() if s.next_fire > after]
        return min(times, default=None)

    def running_attempts(self, task_ids: Collection[str]) -> dict[str, int]:
        tasks = (self._tasks.get(task_id) for task_id in task_ids)
        return {t.id: t.attempts for t in tasks if t is not None and t.status == TaskStatus.RUNNING}

    def recover(self, keep: Collection[str] = ()) -> int:
        def run() -> int:
            running = [t for t in self._tasks.values() if t.status == TaskStatus.RUNNING and t.id not in keep]
            for task in running:
                self._set(self._tasks, task.id, dataclasses.replace(task, status=TaskStatus.QUEUED))
            return len(running)

        return int(self._write(run))

    def close(self) -> None:
        pass

    # -- ops (called under the lock, with an undo log) -----------------------


def _restore(mapping: MutableMapping[Any, Any], key: Hashable, old: Any) -> None:
    if old is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = old

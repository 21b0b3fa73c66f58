"""Applying a Batch inside one open SQLite transaction, and reading rows back as records."""
from __future__ import annotations

import sqlite3
from typing import Any, Callable

from ..errors import DuplicateInstanceError, NotFoundError, StoreError
from ..models import Entry, Instance, InstanceStatus, Kind, TaskRecord, TaskStatus, Timer
from . import UNSET, Batch, NewEntry

INSTANCE_COLS = (
    "id, kind, name, version, custom_id, env, status, data, properties, error,"
    " parent_id, parent_position, created_at, updated_at"
)
TASK_COLS = "id, instance_id, position, name, data, status, retry_index, attempts, run_at, created_at"
JOURNAL_COLS = "instance_id, seq, type, position, name, data, properties, created_at"
UNFINISHED_SQL = "status IN ('running', 'paused')"  # must match the partial unique index


class Writer:
    """The ops of a Batch inside one open transaction.

    Journal rows are gathered and inserted with one executemany at the end; the
    per-instance ``last_seq`` is cached for the transaction.
    """

    def __init__(self, c: sqlite3.Connection, now: Callable[[], float]):
        self.c = c
        self.now = now
        self.last_seq: dict[str, int] = {}
        self.moved: set[str] = set()
        self.entries: list[tuple[Any, ...]] = []

    def run(self, batch: Batch) -> None:
        for op, args, kwargs in batch.ops:
            method = getattr(self, op, None) if op in BATCH_OPS else None
            if method is None:
                raise StoreError(f"unknown batch op {op!r}")
            if op == "create_instance":
                kwargs = {**kwargs, "skip_duplicate": True}
            method(*args, **kwargs)

    def flush(self) -> None:
        if self.entries:
            self.c.executemany(f"INSERT INTO journal ({JOURNAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.entries)
        if self.moved:
            self.c.executemany(
                "UPDATE instances SET last_seq = ? WHERE id = ?", [(self.last_seq[i], i) for i in self.moved]
            )

    def require(self, instance_id: str) -> None:
        if instance_id not in self.last_seq:
            row = self.c.execute("SELECT last_seq FROM instances WHERE id = ?", (instance_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no instance with id {instance_id!r}")
            self.last_seq[instance_id] = row[0]

    def create_instance(
        self, instance: Instance, started: NewEntry, task: TaskRecord | None = None, *, skip_duplicate: bool
    ) -> bool:
        i = instance
        kind, status = Kind(i.kind), InstanceStatus(i.status)
        if started.instance_id != i.id:
            raise StoreError(f"started entry for {started.instance_id!r} given with instance {i.id!r}")
        if kind is Kind.WORKFLOW and i.custom_id is not None and not status.finished:
            taken = self.c.execute(
                f"SELECT 1 FROM instances WHERE env = ? AND name = ? AND custom_id = ? AND kind = 'workflow'"
                f" AND custom_id IS NOT NULL AND {UNFINISHED_SQL}",
                (i.env, i.name, i.custom_id),
            ).fetchone()
            if taken:
                if skip_duplicate:
                    return False
                raise _duplicate(i.name, i.custom_id, i.env)
        try:
            self.c.execute(
                f"INSERT INTO instances ({INSTANCE_COLS}, ready, last_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                (i.id, kind.value, i.name, i.version, i.custom_id, i.env, status.value, i.data, i.properties,
                 i.error, i.parent_id, i.parent_position, i.created_at, i.updated_at, int(kind is Kind.WORKFLOW)),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(f"cannot create instance {i.id!r}: {e}") from e
        self.last_seq[i.id] = 0
        self.append(started)
        self.moved.discard(i.id)  # inserted with last_seq = 1 already
        if task is not None:
            self.add_task(task)
        return True

    def append(self, entry: NewEntry) -> None:
        self.require(entry.instance_id)
        seq = self.last_seq[entry.instance_id] = self.last_seq[entry.instance_id] + 1
        self.moved.add(entry.instance_id)
        self.entries.append((entry.instance_id, seq, Entry(entry.type).value, entry.position, entry.name,
                             entry.data, entry.properties, self.now()))

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        sets: list[str] = ["updated_at = ?"]
        params: list[Any] = [self.now()]
        if status is not None:
            sets.append("status = ?")
            params.append(InstanceStatus(status).value)
        if properties is not UNSET:
            sets.append("properties = ?")
            params.append(properties)
        if error is not UNSET:
            sets.append("error = ?")
            params.append(error)
        try:
            cur = self.c.execute(f"UPDATE instances SET {', '.join(sets)} WHERE id = ?", (*params, instance_id))
        except sqlite3.IntegrityError as e:  # back to unfinished while its custom id is taken again
            env, name, custom_id = self.c.execute(
                "SELECT env, name, custom_id FROM instances WHERE id = ?", (instance_id,)
            ).fetchone()
            raise _duplicate(name, custom_id, env) from e
        if cur.rowcount == 0:
            raise NotFoundError(f"no instance with id {instance_id!r}")

    def add_task(self, task: TaskRecord) -> None:
        t = task
        self.require(t.instance_id)
        try:
            self.c.execute(
                f"INSERT INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (t.id, t.instance_id, t.position, t.name, t.data, TaskStatus(t.status).value, t.retry_index,
                 t.attempts, t.run_at, t.created_at),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(f"cannot add task {t.id!r}: {e}") from e

    def update_task(
        self, task_id: str, *, status: TaskStatus | None = None, retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        cur = self.c.execute(
            "UPDATE tasks SET status = coalesce(?, status), retry_index = coalesce(?, retry_index),"
            " run_at = coalesce(?, run_at) WHERE id = ?",
            (None if status is None else TaskStatus(status).value, retry_index, run_at, task_id),
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no task with id {task_id!r}")

    def cancel_tasks(self, instance_id: str) -> None:
        self.require(instance_id)
        self.c.execute(
            "UPDATE tasks SET status = 'cancelled' WHERE instance_id = ? AND status IN ('queued', 'running')",
            (instance_id,),
        )

    def add_timer(self, timer: Timer) -> None:
        """A timer replaces any timer at the same instance and position."""
        self.require(timer.instance_id)
        self.c.execute(
            "INSERT OR REPLACE INTO timers (instance_id, position, fire_at) VALUES (?, ?, ?)",
            (timer.instance_id, timer.position, timer.fire_at),
        )

    def delete_timer(self, instance_id: str, position: int) -> None:
        self.require(instance_id)
        self.c.execute("DELETE FROM timers WHERE instance_id = ? AND position = ?", (instance_id, position))

    def delete_timers(self, instance_id: str) -> None:
        self.require(instance_id)
        self.c.execute("DELETE FROM timers WHERE instance_id = ?", (instance_id,))

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        self.require(instance_id)
        self.c.executemany(
            "DELETE FROM inbox WHERE id = ? AND instance_id = ?", [(item_id, instance_id) for item_id in item_ids]
        )
        self.c.execute(
            "UPDATE instances SET ready = EXISTS (SELECT 1 FROM inbox WHERE instance_id = ?) WHERE id = ?",
            (instance_id, instance_id),
        )

    def post(self, instance_id: str, kind: str, name: str | None = None, data: str | None = None) -> int:
        self.require(instance_id)
        cur = self.c.execute(
            "INSERT INTO inbox (instance_id, kind, name, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (instance_id, kind, name, data, self.now()),
        )
        self.c.execute("UPDATE instances SET ready = 1 WHERE id = ?", (instance_id,))
        return int(cur.lastrowid or 0)

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        self.require(instance_id)
        self.flush()  # entries this batch appended so far get their rows (and seqs) first
        self.entries, self.moved = [], set()
        c, params = self.c, (instance_id, keep_through_seq)
        (run,) = c.execute(
            "SELECT coalesce(max(run), 0) + 1 FROM journal_archive WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        c.execute(
            f"INSERT INTO journal_archive (run, archived_at, {JOURNAL_COLS}) SELECT ?, ?, {JOURNAL_COLS}"
            " FROM journal WHERE instance_id = ? AND seq > ?",
            (run, self.now(), *params),
        )
        c.execute("DELETE FROM journal WHERE instance_id = ? AND seq > ?", params)
        self.last_seq[instance_id] = min(self.last_seq[instance_id], keep_through_seq)
        self.moved.add(instance_id)
        c.execute(
            "UPDATE tasks SET status = 'cancelled' WHERE instance_id = ? AND position >= ?"
            " AND status IN ('queued', 'running', 'failed')",
            (instance_id, position),
        )
        c.execute("DELETE FROM timers WHERE instance_id = ? AND position >= ?", (instance_id, position))
        c.execute(
            "UPDATE instances SET parent_position = NULL WHERE parent_id = ? AND parent_position >= ?",
            (instance_id, position),
        )


BATCH_OPS = frozenset({
    "create_instance", "append", "update_instance", "add_task", "update_task", "cancel_tasks",
    "add_timer", "delete_timer", "delete_timers", "consume_inbox", "post", "rewind",
})


def _duplicate(name: str, custom_id: str, env: str) -> DuplicateInstanceError:
    return DuplicateInstanceError(
        f"workflow {name!r} already has an unfinished instance with id {custom_id!r} (env {env!r})"
    )


def instance_row(r: Any) -> Instance:
    return Instance(r[0], Kind(r[1]), r[2], r[3], r[4], r[5], InstanceStatus(r[6]), *r[7:])


def task_row(r: Any) -> TaskRecord:
    return TaskRecord(r[0], r[1], r[2], r[3], r[4], TaskStatus(r[5]), r[6], r[7], r[8], r[9])

"""Applying a Batch inside one open SQLite transaction, and reading rows back as records."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from zenaton_runtime.errors import NotFoundError, StoreError
from zenaton_runtime.models import (
    Entry,
    InboxKind,
    Instance,
    InstanceStatus,
    Kind,
    Schedule,
    TaskRecord,
    TaskStatus,
    Timer,
)
from zenaton_runtime.store.ops import (
    UNSET,
    AddSchedule,
    AddTask,
    AddTimer,
    Append,
    Batch,
    CreateInstance,
    NewEntry,
    UpdateTask,
)
from zenaton_runtime.store.schema import OPEN_TASK, UNFINISHED_SQL
from zenaton_runtime.store.sqlite_rows import (
    INSTANCE_COLS,
    INSTANCE_MARKS,
    JOURNAL_COLS,
    TASK_COLS,
    stored_value,
)
from zenaton_runtime.store.sqlite_schedules import INSERT_SCHEDULE, schedule_values
from zenaton_runtime.store.writer_ops import apply_ops, claim_gathered, duplicate_instance

# A kill cancels the open tasks but the failed ones: written so, the partial index of open
# tasks serves it (a condition that differs from the index's by a word makes SQLite scan).
CANCEL_LIVE_TASKS = (
    f"UPDATE tasks SET status = 'cancelled' WHERE instance_id = ? AND {OPEN_TASK} AND status != 'failed'"
)


class Writer:
    """The ops of a Batch inside one open transaction.

    Row writes are gathered and sent with one ``executemany`` per statement at ``flush()``:
    journal rows, new instances without a custom id, new tasks, task updates, inbox and
    timer deletions, and each instance's changed columns (its ``last_seq`` included) as one UPDATE.
    Any other op flushes what is gathered first, so every op sees the effects of those
    before it. The instances a batch touches have their ``last_seq`` read in one query.
    """

    def __init__(self, c: sqlite3.Connection, now: Callable[[], float]):
        self.c = c
        self.now = now
        self.time = now()  # of the journal entries written: the transaction's, for them all
        self.last_seq: dict[str, int] = {}
        self.moved: set[str] = set()
        self.entries: list[tuple[Any, ...]] = []
        self.new_instances: list[tuple[Any, ...]] = []
        self.new_tasks: list[tuple[Any, ...]] = []
        self.task_updates: list[tuple[Any, ...]] = []
        self.inbox_deletes: list[tuple[int, str]] = []
        self.timer_deletes: list[tuple[str, int]] = []
        self.all_timer_deletes: list[tuple[str]] = []
        self.ready_checks: list[tuple[str, str]] = []
        self.instance_sets: dict[str, dict[str, Any]] = {}
        self.flushed = False  # something gathered was already written (claim_added cannot tell)

    def run(self, batch: Batch) -> None:
        self._preload(batch)
        apply_ops(self, batch)

    def _preload(self, batch: Batch) -> None:
        """Read the ``last_seq`` of every instance the batch refers to, in one query."""
        ids: set[str] = set()
        for op in batch.ops:  # the type checks inline: this runs for every op of every step
            kind = type(op)
            if kind is Append:
                ids.add(op.entry.instance_id)  # type: ignore[union-attr]
            elif kind is AddTask:
                ids.add(op.task.instance_id)  # type: ignore[union-attr]
            elif kind is AddTimer:
                ids.add(op.timer.instance_id)  # type: ignore[union-attr]
            elif kind is not CreateInstance and kind is not UpdateTask and kind is not AddSchedule:
                ids.add(op.instance_id)  # type: ignore[union-attr]
        wanted = [i for i in ids if i not in self.last_seq]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self.last_seq.update(self.c.execute(f"SELECT id, last_seq FROM instances WHERE id IN ({marks})", chunk))

    def claim_added(self, limit: int) -> list[TaskRecord] | None:
        """Claim (up to ``limit``) the tasks this batch adds, still gathered: written as running,
        attempt 1, unless their instance stops in this batch. None when a flush already wrote
        some of them (then only the claim query knows)."""
        if self.flushed:
            return None
        return claim_gathered(self.new_tasks, self.instance_sets, limit)

    def flush(self) -> None:
        """Send every gathered row write, in an order where each finds what it needs."""
        c = self.c
        self.flushed = self.flushed or bool(self.new_tasks or self.instance_sets or self.moved)
        if self.new_instances:
            rows, self.new_instances = self.new_instances, []
            self._insert(f"INSERT INTO instances ({INSTANCE_COLS}, ready, last_seq) VALUES ({INSTANCE_MARKS})", rows)
        if self.new_tasks:
            rows, self.new_tasks = self.new_tasks, []
            self._insert(f"INSERT INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        if self.task_updates:
            rows, self.task_updates = self.task_updates, []
            cur = c.executemany(
                "UPDATE tasks SET status = coalesce(?, status), retry_index = coalesce(?, retry_index),"
                " run_at = coalesce(?, run_at) WHERE id = ?",
                rows,
            )
            if cur.rowcount != len(rows):
                missing = [r[3] for r in rows if not c.execute("SELECT 1 FROM tasks WHERE id = ?", (r[3],)).fetchone()]
                raise NotFoundError(f"no task with id {(missing or ['?'])[0]!r}")
        if self.entries:
            rows, self.entries = self.entries, []
            c.executemany(f"INSERT INTO journal ({JOURNAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if self.inbox_deletes:
            items, self.inbox_deletes = self.inbox_deletes, []
            c.executemany("DELETE FROM inbox WHERE id = ? AND instance_id = ?", items)
        if self.timer_deletes:
            timers, self.timer_deletes = self.timer_deletes, []
            c.executemany("DELETE FROM timers WHERE instance_id = ? AND position = ?", timers)
        if self.all_timer_deletes:
            owners, self.all_timer_deletes = self.all_timer_deletes, []
            c.executemany("DELETE FROM timers WHERE instance_id = ?", owners)
        if self.ready_checks:
            checks, self.ready_checks = self.ready_checks, []
            c.executemany(
                "UPDATE instances SET ready = EXISTS (SELECT 1 FROM inbox WHERE instance_id = ?) WHERE id = ?", checks
            )
        for instance_id in self.moved:
            self.instance_sets.setdefault(instance_id, {})["last_seq"] = self.last_seq[instance_id]
        self.moved = set()
        if self.instance_sets:
            changes, self.instance_sets = self.instance_sets, {}
            self._update_instances(changes)

    def _insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self.c.executemany(sql, rows)
        except sqlite3.IntegrityError as e:  # a random id met twice: nothing of the batch is kept
            raise StoreError(f"cannot insert: {e}") from e

    def _update_instances(self, changes: dict[str, dict[str, Any]]) -> None:
        """One UPDATE per instance, sent as one executemany per set of columns."""
        shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for instance_id, columns in changes.items():
            shape = tuple(columns)
            shapes.setdefault(shape, []).append((*columns.values(), instance_id))
        for shape, rows in shapes.items():
            sql = f"UPDATE instances SET {', '.join(f'{name} = ?' for name in shape)} WHERE id = ?"
            try:
                cur = self.c.executemany(sql, rows)
            except sqlite3.IntegrityError as e:  # back to unfinished while its custom id is taken again
                raise self._duplicate_among([row[-1] for row in rows]) from e
            if cur.rowcount != len(rows):
                missing = [r[-1] for r in rows if r[-1] not in self._existing([r[-1]])]
                raise NotFoundError(f"no instance with id {(missing or ['?'])[0]!r}")

    def _existing(self, ids: list[str]) -> set[str]:
        marks = ", ".join("?" * len(ids))
        return {r[0] for r in self.c.execute(f"SELECT id FROM instances WHERE id IN ({marks})", ids)}

    def _duplicate_among(self, ids: list[str]) -> Exception:
        """The custom-id clash behind an IntegrityError of a grouped update, named."""
        for instance_id in ids:
            row = self.c.execute(
                "SELECT env, name, custom_id FROM instances WHERE id = ? AND custom_id IS NOT NULL", (instance_id,)
            ).fetchone()
            if row is None:
                continue
            env, name, custom_id = row
            clash = self.c.execute(
                "SELECT 1 FROM instances WHERE env = ? AND name = ? AND custom_id = ? AND id != ?"
                f" AND {UNFINISHED_SQL}",
                (env, name, custom_id, instance_id),
            ).fetchone()
            if clash:
                return duplicate_instance(name, custom_id, env)
        return StoreError("an instance update broke a uniqueness rule")

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
        kind = i.kind if type(i.kind) is Kind else Kind(i.kind)
        status = i.status if type(i.status) is InstanceStatus else InstanceStatus(i.status)
        if started.instance_id != i.id:
            raise StoreError(f"started entry for {started.instance_id!r} given with instance {i.id!r}")
        row = (
            i.id,
            kind.value,
            i.name,
            i.version,
            i.custom_id,
            i.env,
            status.value,
            i.data,
            i.properties,
            i.error,
            i.parent_id,
            i.parent_position,
            i.created_at,
            i.updated_at,
            int(kind is Kind.WORKFLOW),
        )
        if kind is Kind.WORKFLOW and i.custom_id is not None and not status.finished:
            self.flush()  # gathered status changes may free or take this custom id
            taken = self.c.execute(
                f"SELECT 1 FROM instances WHERE env = ? AND name = ? AND custom_id = ? AND kind = 'workflow'"
                f" AND custom_id IS NOT NULL AND {UNFINISHED_SQL}",
                (i.env, i.name, i.custom_id),
            ).fetchone()
            if taken:
                if skip_duplicate:
                    return False
                raise duplicate_instance(i.name, i.custom_id, i.env)
            try:
                self.c.execute(
                    f"INSERT INTO instances ({INSTANCE_COLS}, ready, last_seq) VALUES ({INSTANCE_MARKS})", row
                )
            except sqlite3.IntegrityError as e:
                raise StoreError(f"cannot create instance {i.id!r}: {e}") from e
        elif i.id in self.last_seq:
            raise StoreError(f"cannot create instance {i.id!r}: it exists")
        else:
            self.new_instances.append(row)  # no custom id to check: inserted at flush, with the others
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
        self.entries.append(
            (
                entry.instance_id,
                seq,
                stored_value(entry.type, Entry),
                entry.position,
                entry.name,
                entry.data,
                entry.properties,
                self.time,
            )
        )

    def update_instance(
        self, instance_id: str, *, status: InstanceStatus | None = None, properties: Any = UNSET, error: Any = UNSET
    ) -> None:
        self.require(instance_id)
        columns = self.instance_sets.setdefault(instance_id, {})
        columns["updated_at"] = self.now()
        if status is not None:
            columns["status"] = stored_value(status, InstanceStatus)
        if properties is not UNSET:
            columns["properties"] = properties
        if error is not UNSET:
            columns["error"] = error

    def add_task(self, task: TaskRecord) -> None:
        t = task
        self.require(t.instance_id)
        self.new_tasks.append(
            (
                t.id,
                t.instance_id,
                t.position,
                t.name,
                t.data,
                stored_value(t.status, TaskStatus),
                t.retry_index,
                t.attempts,
                t.run_at,
                t.created_at,
            )
        )

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        retry_index: int | None = None,
        run_at: float | None = None,
    ) -> None:
        value = None if status is None else stored_value(status, TaskStatus)
        self.task_updates.append((value, retry_index, run_at, task_id))

    def cancel_tasks(self, instance_id: str) -> None:
        self.require(instance_id)
        self.c.execute(CANCEL_LIVE_TASKS, (instance_id,))

    def add_timer(self, timer: Timer) -> None:
        """A timer replaces any timer at the same instance and position."""
        self.require(timer.instance_id)
        self.c.execute(
            "INSERT OR REPLACE INTO timers (instance_id, position, fire_at) VALUES (?, ?, ?)",
            (timer.instance_id, timer.position, timer.fire_at),
        )

    def delete_timer(self, instance_id: str, position: int) -> None:
        self.require(instance_id)
        self.timer_deletes.append((instance_id, position))

    def delete_timers(self, instance_id: str) -> None:
        self.require(instance_id)
        self.all_timer_deletes.append((instance_id,))

    def consume_inbox(self, instance_id: str, item_ids: list[int]) -> None:
        self.require(instance_id)
        self.inbox_deletes += [(item_id, instance_id) for item_id in item_ids]
        self.ready_checks.append((instance_id, instance_id))

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        self.require(instance_id)
        cur = self.c.execute(
            "INSERT INTO inbox (instance_id, kind, name, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (instance_id, stored_value(kind, InboxKind), name, data, self.now()),
        )
        self.c.execute("UPDATE instances SET ready = 1 WHERE id = ?", (instance_id,))
        return int(cur.lastrowid or 0)

    def add_schedule(self, schedule: Schedule) -> None:
        try:
            self.c.execute(INSERT_SCHEDULE, schedule_values(schedule))
        except sqlite3.IntegrityError as e:  # a random id met twice: nothing of the batch is kept
            raise StoreError(f"cannot add schedule {schedule.id!r}: {e}") from e

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        self.require(instance_id)
        self.flush()  # entries this batch appended so far get their rows (and seqs) first
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
            f"UPDATE tasks SET status = 'cancelled' WHERE instance_id = ? AND position >= ? AND {OPEN_TASK}",
            (instance_id, position),
        )
        c.execute("DELETE FROM timers WHERE instance_id = ? AND position >= ?", (instance_id, position))
        c.execute(
            "UPDATE instances SET parent_position = NULL WHERE parent_id = ? AND parent_position >= ?",
            (instance_id, position),
        )

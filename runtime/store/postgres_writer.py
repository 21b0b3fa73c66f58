"""Applying a Batch inside one open PostgreSQL transaction (each op type to one of the Writer's
methods: ``writer_ops.py``, shared with SQLite's writer).

The Writer first locks the rows of the instances the batch refers to (``SELECT ... FOR UPDATE``,
in id order), reading their journal length and what names their custom id. Holding these locks,
it computes journal seqs without a race, and the ``ready`` flag it writes after consuming
inbox items reads every item committed before it: a client's ``post`` (which inserts its item,
then sets ``ready`` on the same row) either committed before the lock was granted, and is seen,
or waits for this transaction and sets ``ready`` after it.

Row writes are gathered and sent with one ``executemany`` per statement at ``flush()`` (psycopg
pipelines them: one round trip each): journal rows, new instances without a custom id, new
tasks, task updates, inbox and timer deletions, and each instance's changed columns as one
UPDATE. Any other op flushes what is gathered first, so every op sees the effects of those
before it.

With a ``Fence`` (a step of a store holding a lease, ``postgres_leases.py``), the lock also reads
each instance's owner and epoch: every instance the batch writes as its owner (all but a ``Post``
to an inbox, anyone's to make, and the instances it creates) must be held by the fence at the
epoch it claimed it, else the Writer raises ``LeaseLost`` before writing anything. The owner's row
lock is held to the COMMIT, so a takeover's claim (which skips locked rows) happens either before
this step, which then sees the new owner and is refused, or after it, and then replays it: never
both write. A task update is fenced by its instance's owner in its own statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from zenaton_runtime.errors import LeaseLost, NotFoundError, StoreError
from zenaton_runtime.models import (
    UNFINISHED,
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
    CancelTasks,
    ConsumeInbox,
    CreateInstance,
    DeleteTimer,
    DeleteTimers,
    NewEntry,
    Op,
    Rewind,
    UpdateInstance,
    UpdateTask,
)
from zenaton_runtime.store.postgres_schema import CUSTOM_ID_INDEX, CUSTOM_ID_TARGET, OPEN_TASK, Connection
from zenaton_runtime.store.sqlite_rows import INSTANCE_COLS, JOURNAL_COLS, TASK_COLS, stored_value
from zenaton_runtime.store.sqlite_schedules import SCHEDULE_COLS, schedule_values
from zenaton_runtime.store.writer_ops import apply_ops, claim_gathered, duplicate_instance

Query = tuple[str, tuple[Any, ...]]  # a statement and its parameters
COPY_FROM = 16  # new journal entries or tasks in one flush from which they are copied, not inserted
INSTANCE_MARKS = ", ".join(["%s"] * 15)
TASK_MARKS = ", ".join(["%s"] * 10)
JOURNAL_MARKS = ", ".join(["%s"] * 8)
INSERT_INSTANCE = f"INSERT INTO instances ({INSTANCE_COLS}, ready, last_seq) VALUES ({INSTANCE_MARKS}, 1)"
# A kill cancels the open tasks but the failed ones.
CANCEL_LIVE_TASKS = (
    f"UPDATE tasks SET status = 'cancelled' WHERE instance_id = %s AND {OPEN_TASK} AND status != 'failed'"
)
INSERT_SCHEDULE = (
    f"INSERT INTO schedules ({SCHEDULE_COLS}) VALUES ({', '.join(['%s'] * len(SCHEDULE_COLS.split(',')))})"
)
_UNFINISHED = {s.value for s in UNFINISHED}
UPDATE_TASK = (
    "UPDATE tasks SET status = coalesce(%s, status), retry_index = coalesce(%s, retry_index),"
    " run_at = coalesce(%s, run_at) WHERE id = %s"
)
_OWNED = "(SELECT i.owner = %s FROM instances i WHERE i.id = tasks.instance_id)"  # see RUNNING_INSTANCE
UPDATE_OWNED_TASK = f"{UPDATE_TASK} AND {_OWNED}"
# After the task updates, in the same round trip: every task updated was there (and, fenced, of an
# instance this lease owns), else the statement fails (division by zero) and so does the transaction,
# COMMIT included when it was sent with them. Params: how many, their ids (, the owner).
TASKS_UPDATED = "SELECT 1 / (count(*) = %s)::int FROM tasks WHERE id = ANY(%s)"
OWNED_TASKS_UPDATED = f"{TASKS_UPDATED} AND {_OWNED}"
# Ops that write to their instance as its owner (a Post is anyone's to make).
OWNER_OPS: frozenset[type[Op]] = frozenset(
    {Append, UpdateInstance, AddTask, CancelTasks, AddTimer, DeleteTimer, DeleteTimers, ConsumeInbox, Rewind}
)


@dataclass(frozen=True, slots=True)
class Fence:
    """Whose step this is: the lease id, and the instances it holds (id -> epoch claimed at)."""

    owner: str
    held: dict[str, int]


class Writer:
    """The ops of a Batch inside one open transaction of ``c``."""

    def __init__(self, c: Connection, now: Callable[[], float], fence: Fence | None = None, *, begin: bool = False):
        self.c = c
        self.now = now
        self.fence = fence
        self.begin = begin  # the transaction's BEGIN is still to be sent, with the first round trip
        self.opened = not begin  # that round trip came back: a session lost before it left nothing written
        self.created: set[str] = set()  # instances this transaction inserts
        self.owners: dict[str, str | None] = {}  # the owner of each instance locked, as read then
        self.notify_owners: set[str] = set()  # the daemons whose instances it posted to: to be named
        self.finished: set[str] = set()  # instances it moves to a finished status
        self.time = now()  # of the journal entries written: the transaction's, for them all
        self.last_seq: dict[str, int] = {}
        self.named: dict[str, tuple[str, str, str, str | None]] = {}  # id -> kind, env, name, custom id
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
        self.committed = False  # COMMIT went with the last flush (flush(commit=True))
        self.flushed = False  # something gathered was already written (claim_added cannot tell)

    def run(self, batch: Batch) -> None:
        self._lock(batch)
        apply_ops(self, batch)

    def _lock(self, batch: Batch) -> None:
        """Lock the rows of every instance the batch refers to, in one query, in id order (two
        writers locking in the same order never deadlock), and read their journal length. With
        a fence, check the instances written as their owner are held (else LeaseLost)."""
        ids: set[str] = set()
        owned: set[str] = set()
        created: set[str] = set()
        for op in batch.ops:
            kind = type(op)
            if kind is Append:
                instance_id = op.entry.instance_id  # type: ignore[union-attr]
            elif kind is AddTask:
                instance_id = op.task.instance_id  # type: ignore[union-attr]
            elif kind is AddTimer:
                instance_id = op.timer.instance_id  # type: ignore[union-attr]
            elif kind is CreateInstance:
                created.add(op.instance.id)  # type: ignore[union-attr]
                continue
            elif kind is UpdateTask or kind is AddSchedule:
                continue
            else:
                instance_id = op.instance_id  # type: ignore[union-attr]
            ids.add(instance_id)
            if kind in OWNER_OPS:
                owned.add(instance_id)
        wanted = sorted(i for i in ids if i not in self.last_seq)
        if not wanted:
            if self.begin:  # before what the ops send themselves
                self._begin()
            return
        owners = self._read_locked(wanted)
        fence = self.fence
        if fence is not None:
            for i in owned:  # claimed by this lease, the claim's answer lost with a connection
                if i in owners and owners[i][0] == fence.owner and i not in fence.held:
                    fence.held[i] = owners[i][1]
            lost = sorted(
                i
                for i in owned - created
                if i in owners and (owners[i][0] != fence.owner or owners[i][1] != fence.held.get(i))
            )
            if lost:
                for instance_id in lost:
                    fence.held.pop(instance_id, None)
                raise LeaseLost(lost)

    def _read_locked(self, ids: list[str]) -> dict[str, tuple[str | None, int]]:
        """Lock and read these instances' rows; their owner and epoch, by id."""
        query = (
            "SELECT id, last_seq, kind, env, name, custom_id, owner, epoch FROM instances"
            " WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (ids,),
        )
        if self.begin:  # BEGIN and the lock in one round trip
            self.begin = False
            with self.c.pipeline():
                self.c.execute("BEGIN")
                cur = self.c.execute(*query)
            self.opened = True
            rows = cur.fetchall()
        else:
            rows = self.c.execute(*query).fetchall()
        owners: dict[str, tuple[str | None, int]] = {}
        for instance_id, last_seq, kind, env, name, custom_id, owner, epoch in rows:
            self.last_seq[instance_id] = last_seq
            self.named[instance_id] = (kind, env, name, custom_id)
            owners[instance_id] = (owner, epoch)
            self.owners[instance_id] = owner
        return owners

    def _begin(self) -> None:
        self.begin = False
        self.c.execute("BEGIN")
        self.opened = True

    def claim_added(self, limit: int) -> list[TaskRecord] | None:
        """Claim (up to ``limit``) the tasks this batch adds, still gathered: written as running,
        attempt 1, unless their instance stops in this batch, or (fenced) is one it creates: no
        daemon owns a new instance until one claims it. None when a flush already wrote some of
        them (then only the claim query knows)."""
        if self.flushed:
            return None
        return claim_gathered(self.new_tasks, self.instance_sets, limit, self.created if self.fence else frozenset())

    def flush(self, then: Sequence[Query] = (), commit: bool = False) -> list[tuple[Any, ...]]:
        """Send every gathered row write, in an order where each finds what it needs: in one
        pipeline (one round trip to the server for them all). The instances' UPDATEs go last, in
        it too unless one brings an instance back to unfinished: its custom-id clash, if any, is
        named from the rows it came from. ``then``: statements (sql, params) that must see these
        writes, sent after them, in the same round trip when they can be; the rows of the last
        are returned (none when it returns none). ``commit``: COMMIT goes last in that round trip
        too when everything else did (``committed`` says whether it went); then nothing may follow."""
        c = self.c
        begin, self.begin = self.begin, False
        updated: list[str] = []
        for instance_id in self.moved:
            self.instance_sets.setdefault(instance_id, {})["last_seq"] = self.last_seq[instance_id]
        self.moved = set()
        self.flushed = self.flushed or bool(self.new_tasks or self.instance_sets)
        changes, self.instance_sets = self.instance_sets, {}
        clashless = all(columns.get("status") not in _UNFINISHED for columns in changes.values())
        gathered = (
            self.new_instances
            or self.new_tasks
            or self.task_updates
            or self.entries
            or self.inbox_deletes
            or self.timer_deletes
            or self.all_timer_deletes
            or self.ready_checks
            or changes
        )
        if begin and (not gathered or len(self.new_tasks) >= COPY_FROM or len(self.entries) >= COPY_FROM):
            self._begin()  # before what goes outside the pipeline
            begin = False
        if not gathered:  # nothing to send: no pipeline (its sync alone is a round trip)
            return _run(c, then)
        answer = None
        try:
            # many new rows are copied, before the rest (the task updates may be of new tasks):
            # COPY takes a round trip of its own but costs a fraction of an INSERT a row
            if len(self.new_tasks) >= COPY_FROM:
                rows, self.new_tasks = self.new_tasks, []
                _copy(c, f"COPY tasks ({TASK_COLS}) FROM STDIN", rows)
            if len(self.entries) >= COPY_FROM:
                rows, self.entries = self.entries, []
                _copy(c, f"COPY journal ({JOURNAL_COLS}) FROM STDIN", rows)
            with c.pipeline(), c.cursor() as cur:
                if begin:
                    cur.execute("BEGIN")
                if self.new_instances:
                    rows, self.new_instances = self.new_instances, []
                    cur.executemany(INSERT_INSTANCE, rows)
                if self.new_tasks:
                    rows, self.new_tasks = self.new_tasks, []
                    cur.executemany(f"INSERT INTO tasks ({TASK_COLS}) VALUES ({TASK_MARKS})", rows)
                if self.task_updates:
                    rows, self.task_updates = self.task_updates, []
                    updated = list(dict.fromkeys(row[3] for row in rows))
                    if self.fence is None:
                        cur.executemany(UPDATE_TASK, rows)
                        cur.execute(TASKS_UPDATED, (len(updated), updated))
                    else:
                        cur.executemany(UPDATE_OWNED_TASK, [(*row, self.fence.owner) for row in rows])
                        cur.execute(OWNED_TASKS_UPDATED, (len(updated), updated, self.fence.owner))
                if self.entries:
                    rows, self.entries = self.entries, []
                    cur.executemany(f"INSERT INTO journal ({JOURNAL_COLS}) VALUES ({JOURNAL_MARKS})", rows)
                if self.inbox_deletes:
                    items, self.inbox_deletes = self.inbox_deletes, []
                    cur.executemany("DELETE FROM inbox WHERE id = %s AND instance_id = %s", items)
                if self.timer_deletes:
                    timers, self.timer_deletes = self.timer_deletes, []
                    cur.executemany("DELETE FROM timers WHERE instance_id = %s AND position = %s", timers)
                if self.all_timer_deletes:
                    owners, self.all_timer_deletes = self.all_timer_deletes, []
                    cur.executemany("DELETE FROM timers WHERE instance_id = %s", owners)
                if self.ready_checks:
                    checks, self.ready_checks = self.ready_checks, []
                    cur.executemany(
                        "UPDATE instances SET ready = EXISTS (SELECT 1 FROM inbox WHERE instance_id = %s)"
                        " WHERE id = %s",
                        checks,
                    )
                if changes and clashless:
                    for _, sql, rows in _instance_updates(changes):
                        cur.executemany(sql, rows)
                if then and (clashless or not changes):
                    for query in then[:-1]:
                        cur.execute(*query)
                    answer = c.cursor()  # its own: read once the pipeline has synced
                    answer.execute(*then[-1])
                if commit and (clashless or not changes):
                    cur.execute("COMMIT")
                    self.committed = True
        except pg_errors.UniqueViolation as e:  # a random id met twice: nothing of the batch is kept
            raise StoreError(f"cannot insert: {_first_line(e)}") from e
        except pg_errors.DivisionByZero:  # the tasks-updated check: the transaction is over
            c.execute("ROLLBACK")
            self._task_update_refused(updated)
        self.opened = True
        if changes and not clashless:
            self._update_instances(changes)
        if answer is None:  # none asked, or after the instances' updates made one at a time
            return _run(c, then)
        found: list[tuple[Any, ...]] = answer.fetchall() if answer.description else []
        answer.close()
        return found

    def _task_update_refused(self, ids: list[str]) -> None:
        """Fewer tasks updated than asked: a task that does not exist, or (fenced) one of an
        instance another daemon owns now."""
        known: dict[str, str] = dict(
            self.c.execute("SELECT id, instance_id FROM tasks WHERE id = ANY(%s)", (ids,)).fetchall()
        )
        missing = [i for i in ids if i not in known]
        if missing or self.fence is None:
            raise NotFoundError(f"no task with id {(missing or ['?'])[0]!r}")
        raise LeaseLost(sorted({known[i] for i in ids}))

    def _update_instances(self, changes: dict[str, dict[str, Any]]) -> None:
        """The instances' UPDATEs, one at a time, each failure named."""
        for shape, sql, rows in _instance_updates(changes):
            try:
                with self.c.cursor() as cur:
                    cur.executemany(sql, rows)
            except pg_errors.UniqueViolation as e:  # back to unfinished while its custom id is taken again
                raise self._duplicate_among(shape, rows) from e

    def _duplicate_among(self, shape: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Exception:
        """The custom-id clash behind a grouped update's unique violation, named from what the
        lock read (the transaction is aborted: nothing more can be asked of it)."""
        if "status" in shape:
            at = shape.index("status")
            for row in rows:
                kind, env, name, custom_id = self.named.get(row[-1], ("", "", "", None))
                if kind == Kind.WORKFLOW.value and custom_id is not None and row[at] in _UNFINISHED:
                    return duplicate_instance(name, custom_id, env)
        return StoreError("an instance update broke a uniqueness rule")

    def require(self, instance_id: str) -> None:
        if instance_id not in self.last_seq:
            self._read_locked([instance_id])
            if instance_id not in self.last_seq:
                raise NotFoundError(f"no instance with id {instance_id!r}")

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
            kind is Kind.WORKFLOW,
        )
        if kind is Kind.WORKFLOW and i.custom_id is not None and not status.finished:
            self.flush()  # gathered status changes may free or take this custom id
            if not self._insert_holding_custom_id(row, skip_duplicate):
                return False
        elif i.id in self.last_seq:
            raise StoreError(f"cannot create instance {i.id!r}: it exists")
        else:
            self.new_instances.append(row)  # no custom id to check: inserted at flush, with the others
        self.last_seq[i.id] = 0
        self.created.add(i.id)
        self.named[i.id] = (kind.value, i.env, i.name, i.custom_id)
        self.append(started)
        self.moved.discard(i.id)  # inserted with last_seq = 1 already
        if task is not None:
            self.add_task(task)
        return True

    def _insert_holding_custom_id(self, row: tuple[Any, ...], skip_duplicate: bool) -> bool:
        """Insert an unfinished workflow with a custom id; the partial unique index decides. With
        ``skip_duplicate``, a taken id is False (ON CONFLICT on that index alone: any other
        clash still fails); otherwise DuplicateInstanceError."""
        name, custom_id, env = row[2], row[4], row[5]
        try:
            if skip_duplicate:
                inserted = self.c.execute(
                    f"{INSERT_INSTANCE} ON CONFLICT {CUSTOM_ID_TARGET} DO NOTHING RETURNING ord",
                    row,
                ).fetchone()
                return inserted is not None
            self.c.execute(INSERT_INSTANCE, row)
        except pg_errors.UniqueViolation as e:
            if e.diag.constraint_name == CUSTOM_ID_INDEX:
                raise duplicate_instance(name, custom_id, env) from e
            raise StoreError(f"cannot create instance {row[0]!r}: {_first_line(e)}") from e
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
            columns["status"] = value = stored_value(status, InstanceStatus)
            if value not in _UNFINISHED:  # a finished instance has no owner (postgres_leases.py)
                columns["owner"] = None
                self.finished.add(instance_id)
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
            "INSERT INTO timers (instance_id, position, fire_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (instance_id, position) DO UPDATE SET fire_at = EXCLUDED.fire_at",
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
        """The item first, then the flag on the instance's row (see the module's docstring)."""
        self.require(instance_id)
        row = self.c.execute(
            "INSERT INTO inbox (instance_id, kind, name, data, created_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (instance_id, stored_value(kind, InboxKind), name, data, self.now()),
        ).fetchone()
        self.c.execute("UPDATE instances SET ready = true WHERE id = %s", (instance_id,))
        owner = self.owners.get(instance_id)
        if owner is not None:
            self.notify_owners.add(owner)
        return int(row[0]) if row is not None else 0

    def rewind(self, instance_id: str, keep_through_seq: int, position: int) -> None:
        self.require(instance_id)
        self.flush()  # entries this batch appended so far get their rows (and seqs) first
        c, params = self.c, (instance_id, keep_through_seq)
        row = c.execute(
            "SELECT coalesce(max(run), 0) + 1 FROM journal_archive WHERE instance_id = %s", (instance_id,)
        ).fetchone()
        run = int(row[0]) if row is not None else 1
        c.execute(
            f"INSERT INTO journal_archive (run, archived_at, {JOURNAL_COLS}) SELECT %s, %s, {JOURNAL_COLS}"
            " FROM journal WHERE instance_id = %s AND seq > %s",
            (run, self.now(), *params),
        )
        c.execute("DELETE FROM journal WHERE instance_id = %s AND seq > %s", params)
        self.last_seq[instance_id] = min(self.last_seq[instance_id], keep_through_seq)
        self.moved.add(instance_id)
        c.execute(
            f"UPDATE tasks SET status = 'cancelled' WHERE instance_id = %s AND position >= %s AND {OPEN_TASK}",
            (instance_id, position),
        )
        c.execute("DELETE FROM timers WHERE instance_id = %s AND position >= %s", (instance_id, position))
        c.execute(
            "UPDATE instances SET parent_position = NULL WHERE parent_id = %s AND parent_position >= %s",
            (instance_id, position),
        )

    def add_schedule(self, schedule: Schedule) -> None:
        """A schedule's row: a workflow's ``schedule()`` in its step's batch, or a client's ``add_schedule``."""
        try:
            self.c.execute(INSERT_SCHEDULE, schedule_values(schedule))
        except pg_errors.UniqueViolation as e:  # a random id met twice: nothing of the batch is kept
            raise StoreError(f"cannot add schedule {schedule.id!r}: {_first_line(e)}") from e


def _instance_updates(
    changes: dict[str, dict[str, Any]],
) -> list[tuple[tuple[str, ...], str, list[tuple[Any, ...]]]]:
    """One UPDATE per instance, as one executemany per set of columns (its shape). Every instance
    here was locked (``require``), so each exists."""
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for instance_id, columns in changes.items():
        shapes.setdefault(tuple(columns), []).append((*columns.values(), instance_id))
    return [
        (shape, f"UPDATE instances SET {', '.join(f'{name} = %s' for name in shape)} WHERE id = %s", rows)
        for shape, rows in shapes.items()
    ]


def _copy(c: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with c.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _run(c: Connection, queries: Sequence[Query]) -> list[tuple[Any, ...]]:
    """Each statement in turn; the rows of the last (none when it returns none)."""
    cur = None
    for query in queries:
        cur = c.execute(*query)
    return cur.fetchall() if cur is not None and cur.description else []


def _first_line(error: psycopg.Error) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

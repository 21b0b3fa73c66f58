"""The Store protocol: records and bytes, nothing that knows a Workflow class.

One module per backend (``memory``, ``sqlite``, ``postgres``, and their helpers); ``open_store(url)``
picks one. Every write the engine makes for a step is a typed op (``ops.py``) in one ``Batch``,
which ``commit_step`` applies atomically with the claim of the next tasks: all of it is durable,
or none of it. It returns a ``PendingCommit`` on every backend: landed at once, or (SQLite,
when the engine allows it) still committing on a thread while the engine decides the next step.

Writers:
- clients (scripts, the CLI, tasks) create instances and ``post`` inbox items;
- only the daemon appends to journals, changes statuses, claims tasks and timers;
- each daemon writes its own record (``heartbeat``), outside any step.

Adding a backend: implement this protocol in ``store/<name>.py`` (interpret each op type of
``ops.py`` in one place), teach ``open_store`` its URL, and add it to the ``store`` fixture of
``tests/test_store_contract.py``, the one judge of every backend.

May import ``errors`` and ``models`` only: a backend stores records and text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from zenaton_runtime.models import (
    ArchivedRun,
    Claimed,
    DaemonRecord,
    InboxItem,
    InboxKind,
    Instance,
    InstanceCount,
    InstanceStatus,
    JournalEntry,
    Schedule,
    TaskRecord,
    Timer,
)
from zenaton_runtime.store.ops import UNSET, Batch, NewEntry, Op
from zenaton_runtime.store.pending import PendingCommit

__all__ = ["UNSET", "Batch", "NewEntry", "Op", "PendingCommit", "Store", "StoreReads", "open_store", "redacted"]


class StoreReads(Protocol):
    """The reads an engine step makes (and a rewind's checks): a part of the Store protocol,
    which an activation sees instead of the whole store."""

    def get_instance(self, instance_id: str) -> Instance | None: ...

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
        """Matching instances, newest first (created_at, then insertion order). ``before``: only
        those strictly after the instance with that id in this order (keyset paging: pass the
        last id of a page to get the next; an unknown id gives none)."""

    def journal(self, instance_id: str, after_seq: int = 0) -> list[JournalEntry]:
        """Entries with seq > after_seq, in seq order."""

    def journal_length(self, instance_id: str) -> int | None:
        """How many entries the instance's journal held when the last ``get_instances`` read it
        (the engine's read at the start of a step), or None if that call did not read it. Only
        the daemon appends to a journal, and a step reads its instances before it writes them: an
        activation learns from this that a fresh instance's journal is its ``started`` entry
        alone, without reading it back."""

    def open_tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """The instance's queued, running and failed tasks in creation order (what the daemon needs)."""

    def archive(self, instance_id: str) -> list[ArchivedRun]:
        """The runs rewinds archived (their entries past the cut), oldest run first."""


class Store(StoreReads, Protocol):
    """What the engine needs of a backend. Times are unix seconds (float, UTC)."""

    now: Callable[[], float]

    # -- clients ---------------------------------------------------------
    def create_instance(self, instance: Instance, started: NewEntry, task: TaskRecord | None = None) -> None:
        """Insert an instance, its first journal entry and (standalone task) its task, atomically.

        A workflow instance is created ready. Raises DuplicateInstanceError when an
        unfinished workflow instance with the same env, name and custom id exists.
        """

    def create_instances(self, records: list[tuple[Instance, NewEntry, TaskRecord | None]]) -> list[bool]:
        """Many instances in one transaction (bulk dispatch); False where a custom id was taken."""

    def get_instances(self, instance_ids: list[str]) -> dict[str, Instance]:
        """The existing ones among these ids, in one read."""

    def tasks_of(self, instance_id: str) -> list[TaskRecord]:
        """All the instance's tasks in creation order, finished ones included (inspection)."""

    def post(self, instance_id: str, kind: InboxKind, name: str | None = None, data: str | None = None) -> int:
        """Add an inbox item and mark the instance ready; returns the item id."""

    def inbox(self, instance_id: str) -> list[InboxItem]:
        """Unconsumed inbox items of the instance, oldest first."""

    def inboxes(self, instance_ids: list[str]) -> dict[str, list[InboxItem]]:
        """``inbox`` of each of these instances, in one read."""

    def counts(self) -> dict[str, int]:
        """Number of instances by status, and "tasks_queued"."""

    def instance_counts(self, env: str | None = None) -> list[InstanceCount]:
        """How many instances (of one env, or all) by kind, name and status; the pairs with none
        left out; ordered by kind, name, status."""

    # -- daemon ----------------------------------------------------------
    def ready_instances(self, limit: int) -> list[str]:
        """Ids of instances marked ready, oldest first."""

    def due_timers(self, now: float, limit: int) -> list[Timer]: ...

    def next_due(self, after: float) -> float | None:
        """The earliest time later than ``after`` when a timer, a claimable queued task or a
        schedule falls due, or None: what a look at time ``after`` could not have seen."""

    def commit_step(
        self, batch: Batch, now: float, limit: int, *, only_added: bool = False, background: bool = False
    ) -> PendingCommit:
        """Apply every op of ``batch`` and claim up to ``limit`` queued tasks (run_at <= now, of
        running instances: they become running, attempts + 1) in ONE transaction: one commit a step.

        ``only_added`` promises that no task was claimable before the batch: a backend may then
        claim the tasks the batch adds without looking for others. ``background`` allows the
        backend to return before the COMMIT landed (the handle's ``wait()`` lands it); a backend
        that cannot returns it landed. While a commit is in flight, reads show the store without
        it or with all of it, and any other write waits for it first. A store holding a lease
        refuses, whole, a step that writes to an instance another daemon took over: LeaseLost."""

    def settle(self) -> None:
        """Wait for a commit still in flight, if any; reads show it from then on."""

    def running_attempts(self, task_ids: Collection[str]) -> dict[str, int]:
        """Which of these tasks are running, and at which attempt: read once any COMMIT whose
        answer this store lost has ended (on PostgreSQL the server may still be running it)."""

    def recover(self, keep: Collection[str] = ()) -> int:
        """Put running tasks back to queued, but those named in ``keep``; return how many. After a
        crash, all of them. After a step whose COMMIT may have landed unheard, the engine keeps the
        attempts it still runs or holds results of: the tasks that commit claimed reach no worker
        otherwise. A store holding a lease touches only the tasks of its own instances."""

    # -- ownership: which daemon drives which instance (store/postgres_leases.py) --
    def take_lease(self, daemon_id: str, ttl: float) -> int:
        """This store becomes the running daemon ``daemon_id``'s, holding a lease of ``ttl``
        seconds; how many interrupted tasks it re-queued. From then on its reads for the engine
        (ready instances, timers, claims) are of the instances it owns. A store one daemon has
        to itself owns everything: ``recover()``."""

    def renew_lease(self) -> bool:
        """Extend the lease; False when it had run out (the daemon froze past it): what it held
        may belong to other daemons now, and it takes a new lease."""

    def claim_instances(self, limit: int) -> Claimed:
        """Take up to ``limit`` instances nobody owns, or whose owner's lease ran out (their
        running tasks queued again). A store one daemon has to itself: nothing to take."""

    def release(self) -> int:
        """A clean stop: running tasks back to queued and every instance let go of, for the other
        daemons to take at once; how many tasks were re-queued."""

    def look_delay(self, since: object) -> float:
        """Seconds the daemon may let what ``changes()`` reports, compared with its value
        ``since``, wait before it looks: 0 when it has the store to itself, for the first of
        several daemons, and for news of its own instances; the others come later, for what the
        first left (see ``postgres_leases.py``)."""

    def changes(self) -> object:
        """A value that differs between two calls when anything other than ``commit_step``
        wrote to the store in between, in this process or another: a client's
        dispatch, an inbox item, a schedule. The engine skips its look for new work while it
        stays the same (see engine/lookout.py)."""

    def wakeup_fd(self) -> int | None:
        """A file descriptor that becomes readable when another process may have made work
        (what ``changes()`` would count), for the daemon to wait on beside its workers; None
        when the backend has none (the daemon then looks at the store every IDLE_POLL). Reading
        ``changes()`` consumes what made it readable. It may change (a new connection): the
        daemon asks again before it waits."""

    def close(self) -> None: ...

    # -- daemons' records (each its own small transaction, never part of a step) --
    def heartbeat(self, record: DaemonRecord) -> None:
        """Insert or replace the record with this id. Not a change: ``changes()`` stays."""

    def daemons(self) -> list[DaemonRecord]:
        """Every record, stale ones included, latest heartbeat first."""

    def remove_daemon(self, daemon_id: str) -> bool:
        """Delete the record (a clean stop); True if it existed."""

    def queue_depth(self, now: float) -> int:
        """How many queued tasks are claimable at ``now``: due, of a running instance."""

    # -- retention (each call its own transaction, never part of a step) ---------
    def prunable(self, statuses: Iterable[InstanceStatus], before: float, limit: int) -> list[str]:
        """Up to ``limit`` ids of finished instances of these statuses last updated before
        ``before``, least recently updated first, which may be removed: no parent still running
        or paused, no child still running or paused (the partial index ``instances_finished``)."""

    def prune(self, instance_ids: Iterable[str], before: float | None = None) -> int:
        """Remove these instances with their journals, archived runs, tasks, timers and inbox
        items in ONE transaction; returns how many went. Eligibility is checked again inside it
        (finished, the family rule of ``prunable``, and last updated before ``before`` if given):
        an instance a retry or a rewind made unfinished meanwhile stays, as do unknown ids."""

    # -- cron schedules --------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> None: ...

    def list_schedules(self, env: str | None = None) -> list[Schedule]:
        """Schedules (of one env, or all), soonest fire first."""

    def delete_schedule(self, schedule_id: str) -> bool:
        """True if it existed."""

    def due_schedules(self, now: float, limit: int) -> list[Schedule]: ...

    def fire_schedule(
        self,
        schedule_id: str,
        expected_fire: float,
        next_fire: float,
        now: float,
        records: tuple[Instance, NewEntry, TaskRecord | None] | None,
    ) -> bool:
        """In one transaction: create the instance (or, with None, count a skip) and move the
        schedule to ``next_fire``; False (nothing written) if its fire time is no longer
        ``expected_fire``. DuplicateInstanceError rolls everything back."""


def open_store(url: str, *, now: Callable[[], float] = time.time, durability: str = "full") -> Store:
    """``memory://``, ``sqlite:///path/to/file.db`` (a relative path is relative to cwd) or
    ``postgresql://user@host:port/database`` (also ``postgres://``; needs the postgres extra)."""
    from zenaton_runtime.errors import ConfigError

    if url.startswith("memory:"):
        from zenaton_runtime.store.memory import MemoryStore

        return MemoryStore(now=now)
    if url.startswith("sqlite:///"):
        from zenaton_runtime.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :], now=now, durability=durability)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401  (the extra's package: without it, say how to install it)
        except ImportError:
            raise ConfigError('the PostgreSQL store needs its extra: pip install "zenaton[postgres]"') from None
        from zenaton_runtime.store.postgres import PostgresStore

        return PostgresStore(url, now=now, durability=durability)
    raise ConfigError(
        f"unsupported store url {redacted(url)!r} (use sqlite:///path, postgresql://user@host/database or memory://)"
    )


def redacted(url: str) -> str:
    """The url with its password, if any, replaced by ``***``: what logs and views may show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    credentials, at, host = authority.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    query = ""
    if "?" in path:
        path, _, query = path.partition("?")
        query = "?" + "&".join(
            f"{key}=***" if key.lower() == "password" else f"{key}{eq}{value}"
            for key, eq, value in (part.partition("=") for part in query.split("&"))
        )
    return f"{scheme}{sep}{credentials}{at}{host}{slash}{path}{query}"

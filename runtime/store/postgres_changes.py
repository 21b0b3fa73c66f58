"""How a PostgreSQL store notices that other processes wrote (``Store.changes()``): LISTEN/NOTIFY.

Every write other than a step's and a heartbeat (a dispatch, an inbox item, a schedule added,
deleted or fired, tasks re-queued) sends ``NOTIFY zenaton`` in its own transaction: PostgreSQL
delivers it when, and only if, that transaction commits. The store whose ``changes()`` is asked
(the daemon's: only the engine's lookout asks) LISTENs on its connection from its first call, and
counts the notifications other sessions sent. Reading them costs no query and no round trip:
``consume_input`` takes what the server already pushed onto the socket, without blocking, and
the notifications that arrive while a query runs are counted as psycopg reads them. A store
that never asks, a client's, never listens, so its connection never holds a backlog of them.

A post to an instance a daemon owns (an event, a pause, a child's result for its parent) also
names its owner (``notify_daemons``): that daemon looks at once even when it lets other news wait (the
daemons after the first, ``Store.look_delay``), so it answers its own instances within
milliseconds.

A notification travels on its own: it may reach the daemon a moment after the client's commit
returned. The connection's socket becomes readable when one arrives: the daemon waits on it
beside its workers (``Store.wakeup_fd``, the pool's ``add_wake_fd``), so an idle daemon wakes
at once, and its next step's ``changes()`` reads the notification off the socket, which then
stops being readable. The daemon's idle wait of at most a second (``IDLE_FALLBACK``) and the
lookout's look at least once a second bound what a late or lost one costs (a delay).
"""

from __future__ import annotations

from typing import Any

from psycopg import Notify

from zenaton_runtime.store.postgres_schema import Connection

CHANNEL = "zenaton"
NOTIFY = f"NOTIFY {CHANNEL}"
# Every daemon is told, and the owners of the instances posted to are named: one statement.
NOTIFY_OWNERS = f"SELECT pg_notify('{CHANNEL}', owner) FROM unnest(%s::text[]) AS owner"


def notify_daemons(owners: set[str]) -> tuple[str, tuple[Any, ...]]:
    """The statement (sql, params) that, in a writer's transaction, notifies every daemon, and
    names each of ``owners`` (the daemons whose instances it posted to) in one notification more."""
    return (NOTIFY_OWNERS, (["", *sorted(owners)],)) if owners else (NOTIFY, ())


class Notifications:
    """The notifications of other sessions received on one connection, counted, and those
    naming ``me`` (the lease of the daemon whose store this is) apart."""

    def __init__(self) -> None:
        self.received = 0
        self.addressed = 0  # those naming ``me``
        self.me: str | None = None
        self.listening = False
        self._own_pid = 0

    def listen(self, conn: Connection) -> None:
        """LISTEN on ``conn`` (a new one after a reconnection): from now on, count."""
        self._own_pid = conn.info.backend_pid
        conn.add_notify_handler(self._on_notify)
        conn.execute(f"LISTEN {CHANNEL}")
        self.listening = True

    def _on_notify(self, notify: Notify) -> None:
        if notify.pid != self._own_pid:  # the store counts its own writes itself, at once
            self._count(notify.payload)

    def _count(self, payload: str) -> None:
        self.received += 1
        if payload and payload == self.me:
            self.addressed += 1

    def drain(self, conn: Connection) -> None:
        """Count what the server already sent, without waiting (no query, no round trip)."""
        with conn.lock:
            pgconn = conn.pgconn
            pgconn.consume_input()
            while (notify := pgconn.notifies()) is not None:
                if notify.be_pid != self._own_pid:
                    self._count(notify.extra.decode())

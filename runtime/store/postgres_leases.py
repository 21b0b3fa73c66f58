"""Several daemons on one PostgreSQL database (a mixin of PostgresStore): leases, claims, release.

Every daemon run holds a lease, a row of ``leases``: its id (the daemon record's) and ``until``,
unix seconds of the **database's** clock (machines' clocks differ), renewed by its heartbeat.
An instance with work to come (unfinished, or ready: a request waiting) has an ``owner`` (a lease
id, or NULL: nobody yet) and an ``epoch``, incremented each time it changes hands. Only its owner
decides it, runs its tasks and fires its timers (the reads of ``PostgresStore`` are filtered by
owner once the store holds a lease); a step that writes to an instance as its owner is refused
whole when the row's owner or epoch is not what this store claimed (``Writer``: the check runs
under the row locks the step takes anyway). A finished instance has no owner.

- ``take_lease``: the daemon's lease, and the shared daemon lock (``zenaton migrate`` takes it
  exclusively: never beside a daemon).
- ``claim_instances``: in one transaction, unowned instances, and those of expired leases (looked
  for once a second at most; in between, the unowned alone in one statement), oldest first,
  ``FOR UPDATE SKIP LOCKED``: two daemons claiming at once split them, and a row a step is
  writing is left for the next look (the taker then replays a journal holding that step). The
  taken instances' running tasks go back to the queue: the dead owner's attempts in flight run
  again; what its steps recorded is in the journal and never runs again. A lease whose instances
  are all taken is deleted. A store whose own lease ran out claims nothing. The session of an
  expired lease that is still open (a daemon frozen, maybe in the middle of a step, holding row
  locks) is ended first (``pg_terminate_backend``; each lease records its session): a frozen
  daemon cannot keep its instances locked. A daemon's session also ends by itself when it leaves
  a transaction open for a third of ``lease_ttl`` (``idle_in_transaction_session_timeout``), for
  roles that may not end other sessions.
- ``renew_lease``: False when the lease had run out (the daemon froze past it): the daemon drops
  everything it holds and takes a new lease.
- ``release``: at a clean stop, the running tasks of its instances back to the queue, its
  instances unowned, its lease deleted, and a NOTIFY: the others take them at once.
- ``look_delay``: new work (a dispatch, an event: every client's NOTIFY wakes every daemon) is
  taken first by one daemon, the first of those alive (the smallest lease id, as the look at the
  leases found it); the others look ``FOLLOWER_DELAY`` later, and take what it left. Each daemon
  reacting at once would split a stream of dispatches into steps of one or two instances each,
  every step paying its fixed cost (a dozen statements) for little work; this way the first
  daemon batches as it would alone, and the others share the work once it falls behind. A post
  to an instance names its owner in its notification (``postgres_changes.py``): news of its own
  instances, a daemon looks at at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import psycopg

from zenaton_runtime.models import NOTHING_CLAIMED, Claimed
from zenaton_runtime.store.postgres_changes import NOTIFY, Notifications
from zenaton_runtime.store.postgres_schema import CLAIMABLE_INSTANCE, idle_limit
from zenaton_runtime.store.postgres_writer import Writer

DB_NOW = "extract(epoch FROM clock_timestamp())::float8"  # the database's clock: every lease's

_CLAIM = """WITH picked AS MATERIALIZED (
    SELECT ord, owner FROM instances WHERE {who} AND ({claimable})
    ORDER BY ord LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
UPDATE instances SET owner = %(me)s, epoch = instances.epoch + 1 FROM picked WHERE instances.ord = picked.ord
RETURNING instances.id, instances.epoch, picked.owner"""
# Unowned, and created before %(before)s: the daemons after the first leave it the newest.
_UNOWNED = "owner IS NULL AND created_at <= %(before)s"
CLAIM_UNOWNED = _CLAIM.format(who=_UNOWNED, claimable=CLAIMABLE_INSTANCE)
CLAIM_WITH_EXPIRED = _CLAIM.format(who=f"(({_UNOWNED}) OR owner = ANY(%(expired)s))", claimable=CLAIMABLE_INSTANCE)
# Between two looks at the leases: the unowned instances, in one statement (its own transaction,
# one round trip), if this store's lease is alive.
CLAIM_UNOWNED_ALONE = _CLAIM.format(
    who=f"{_UNOWNED} AND EXISTS (SELECT 1 FROM leases WHERE id = %(me)s AND until > {DB_NOW})",
    claimable=CLAIMABLE_INSTANCE,
)
LEASES_LOOK = 1.0  # seconds between two looks for expired leases (a takeover waits that much more at most)
FOLLOWER_DELAY = 0.05  # seconds a daemon other than the first lets new work wait before it looks
# The session that holds a lease (its server process and when it started: a pid alone may have
# been reused), written with the lease and again at each renewal (a reconnection brings another).
SESSION = (
    "pg_backend_pid(), (SELECT extract(epoch FROM backend_start)::float8 FROM pg_stat_activity"
    " WHERE pid = pg_backend_pid())"
)
# The sessions still open of expired leases: a daemon frozen in the middle of a step holds the row
# locks of its instances until its session ends, and a claim skips locked rows.
END_EXPIRED_SESSIONS = (
    "SELECT pg_terminate_backend(a.pid) FROM leases l JOIN pg_stat_activity a ON a.pid = l.backend"
    " AND extract(epoch FROM a.backend_start)::float8 = l.backend_start"
    " WHERE l.id = ANY(%s) AND a.pid <> pg_backend_pid()"
)
REQUEUE_TAKEN = "UPDATE tasks SET status = 'queued' WHERE instance_id = ANY(%s) AND status = 'running'"
# An expired lease none of whose instances is left to take.
DELETE_DRAINED = (
    "DELETE FROM leases l WHERE l.id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.owner = l.id)"
)


class PostgresLeases:
    """The lease of the daemon using this store, and the instances it holds (id -> epoch)."""

    _me: str | None
    _ttl: float
    _held: dict[str, int]
    _leases_looked: float  # time.monotonic() of the last look for expired leases
    _first: bool  # the first of the daemons alive at that look: it takes new work at once
    now: Callable[[], float]
    _counted: Callable[[], tuple[int, int, int, int]]
    _young_until: float
    _write: Callable[..., Any]
    _read: Callable[..., list[Any]]
    _take_daemon_lock: Callable[[], None]
    _let_go_of_daemon_lock: Callable[[], None]
    _set: Callable[[str], None]
    _notifications: Notifications

    def take_lease(self, daemon_id: str, ttl: float) -> int:
        """This store becomes the daemon ``daemon_id``'s, with a lease of ``ttl`` seconds. It
        owns nothing yet (claim_instances), so nothing is re-queued: 0."""
        self._take_daemon_lock()
        self._set(idle_limit(ttl))
        self._write(
            lambda w: w.c.execute(
                f"INSERT INTO leases (id, until, backend, backend_start) VALUES (%s, {DB_NOW} + %s, {SESSION})",
                (daemon_id, ttl),
            ),
            notify=False,
        )
        self._me, self._ttl, self._held, self._first = daemon_id, float(ttl), {}, True
        self._notifications.me = daemon_id
        return 0

    def renew_lease(self) -> bool:
        """Extend the lease by ``ttl`` from now; False when it had run out (nothing extended)."""
        me = self._me
        if me is None:
            return True
        sql = (
            f"UPDATE leases SET until = {DB_NOW} + %s, (backend, backend_start) = ({SESSION})"
            f" WHERE id = %s AND until > {DB_NOW}"
        )
        renewed = self._write(lambda w: w.c.execute(sql, (self._ttl, me)).rowcount, notify=False)
        if not renewed:
            self._held.clear()
        return bool(renewed)

    def claim_instances(self, limit: int) -> Claimed:
        """Take up to ``limit`` instances nobody owns or whose owner's lease ran out."""
        me = self._me
        if me is None or limit <= 0:
            return NOTHING_CLAIMED
        now = time.monotonic()
        if now - self._leases_looked < LEASES_LOOK:
            rows = self._read(CLAIM_UNOWNED_ALONE, {"me": me, "limit": limit, "before": self._claims_before()})
            for instance_id, epoch, _ in rows:
                self._held[instance_id] = epoch
            return Claimed([r[0] for r in rows]) if rows else NOTHING_CLAIMED

        def claim(w: Writer) -> Claimed:
            expired: list[str] = []
            alive: list[str] = []
            for lease_id, live in w.c.execute(f"SELECT id, until > {DB_NOW} FROM leases"):
                (alive if live else expired).append(lease_id)
            if me not in alive:
                return NOTHING_CLAIMED  # this store's lease ran out: it claims nothing until it has a new one
            self._first = me == min(alive)
            if expired:
                self._end_sessions(w, expired)
            params = {"me": me, "limit": limit, "expired": expired, "before": self._claims_before()}
            rows = w.c.execute(CLAIM_WITH_EXPIRED if expired else CLAIM_UNOWNED, params).fetchall()
            taken = [r[0] for r in rows if r[2] is not None]
            requeued = 0
            if taken:  # their attempts in flight ran with the dead owner: they run again here
                requeued = w.c.execute(REQUEUE_TAKEN, (taken,)).rowcount
            if expired:
                w.c.execute(DELETE_DRAINED, (expired,))
            for instance_id, epoch, _ in rows:
                self._held[instance_id] = epoch
            if not (expired and len(rows) >= limit):  # else more may be left to take over: look again
                self._leases_looked = now
            return Claimed([r[0] for r in rows], len(taken), requeued)

        claimed: Claimed = self._write(claim, notify=False)
        return claimed

    def look_delay(self, since: object) -> float:
        """0 for the first daemon, and for a post to an instance of this one (a notification
        naming it) or a new connection (which may have missed one) since ``since``."""
        if self._me is None or self._first:
            return 0.0
        if not isinstance(since, tuple) or self._counted()[2:] != since[2:]:
            return 0.0  # a new connection (it may have missed some), or news naming this daemon
        return FOLLOWER_DELAY

    def _recheck_after(self, after: float) -> float | None:
        """For a daemon after the first: when instances it heard of (a notification, its own
        step creating some) since ``after`` are old enough for its claim, so that it looks again
        then, whatever the first daemon does meanwhile (stopping, frozen, deep in a decision)."""
        if self._me is None or self._first or self._young_until <= after:
            return None
        return self._young_until

    def _claims_before(self) -> float:
        """The newest creation time a claim takes: any for the first daemon; for the others,
        what the first left for FOLLOWER_DELAY (on this daemon's clock, as clients' instances
        are on theirs)."""
        return math.inf if self._first else self.now() - FOLLOWER_DELAY

    def _end_sessions(self, w: Writer, expired: list[str]) -> None:
        """End the sessions still open of these expired leases (their transactions roll back,
        their row locks go): the next claim takes their instances. A role that may not end
        them (not the same role, nor a member of pg_signal_backend) waits for the server's
        idle-in-transaction limit instead."""
        try:
            with w.c.transaction():  # a savepoint: a refusal leaves the claim's transaction usable
                w.c.execute(END_EXPIRED_SESSIONS, (expired,))
        except psycopg.errors.InsufficientPrivilege:
            pass

    def release(self) -> int:
        """A clean stop: the running tasks of this daemon's instances back to the queue, its
        instances unowned, its lease gone, the others notified; how many tasks were re-queued."""
        me = self._me
        if me is None:
            return 0

        def release(w: Writer) -> int:
            requeued = w.c.execute(
                "UPDATE tasks SET status = 'queued' WHERE status = 'running'"
                " AND instance_id IN (SELECT id FROM instances WHERE owner = %s)",
                (me,),
            ).rowcount
            w.c.execute("UPDATE instances SET owner = NULL WHERE owner = %s", (me,))
            w.c.execute("DELETE FROM leases WHERE id = %s", (me,))
            w.c.execute(NOTIFY)
            return int(requeued)

        requeued = self._write(release, notify=False)
        self._me, self._held, self._notifications.me = None, {}, None
        self._let_go_of_daemon_lock()
        return int(requeued)

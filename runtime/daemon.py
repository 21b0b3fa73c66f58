"""The daemon: one engine, a worker pool, signals, a pid lock, crash recovery, and its record
in the store (``Heartbeat``)."""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from collections.abc import Callable

from zenaton import __version__
from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.errors import StoreError
from zenaton_runtime.models import HEARTBEAT_INTERVAL, DaemonRecord, InstanceStatus
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.pool.runner import Runner
from zenaton_runtime.pool.worker_pool import WorkerPool
from zenaton_runtime.project.config import Config
from zenaton_runtime.project.loader import SourceSnapshot, load_project
from zenaton_runtime.sdnotify import Notifier
from zenaton_runtime.store import Store, open_store, redacted

IDLE_POLL = 0.05  # seconds between looks at the store when nothing is happening
IDLE_FALLBACK = 1.0  # the same, when the store wakes the daemon itself (Store.wakeup_fd): a slow safety net
STORE_RETRY = 1.0  # seconds between write attempts while the store refuses them (disk full)
RETENTION_INTERVAL = 2.0  # seconds between two background prunes ([retention] in zenaton.toml)
RETENTION_BACKLOG = 0.1  # seconds after a full batch: a backlog drains faster, still between steps
RETENTION_BATCH = 500  # instances at most in one prune (one transaction)
RETENTION_FIRST = 100  # instances in the first prune, before its cost is known
RETENTION_BUDGET = 0.02  # seconds one prune should take at most: the steps waiting behind it wait no longer


def run_daemon(
    config: Config, *, concurrency: int | None = None, log: Callable[[str], None] = print, reload: bool | None = None
) -> int:
    """Run in the foreground until SIGINT/SIGTERM; returns the exit code.

    ``reload`` (default: the config's ``daemon.reload``) watches the project's files and
    loads changed code between two steps (zenaton_runtime.project.reload).
    """
    for name, value in config.dotenv.items():  # tasks read the project's .env, as under the original agent
        os.environ.setdefault(name, value)
    systemd = Notifier.take_socket()  # before any worker starts: they must not inherit it
    lock = PidLock(lock_path(config))
    lock.acquire(config.store_url)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)
        try:
            os.write(wake_write, b"x")
        except BlockingIOError:
            pass

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    store = open_store(config.store_url, durability=config.durability)
    pool = None
    reloader = None
    try:
        # The workers import the very source text the daemon imported (see loader.SourceSnapshot).
        project = load_project(config.root, config.boot, config.module, snapshot=SourceSnapshot(config.root))
        workers = concurrency or config.concurrency
        pool = WorkerPool(
            project,
            root=config.root,
            boot=config.boot,
            module=config.module,
            store_url=config.store_url,
            concurrency=workers,
        )
        pool.add_wake_fd(wake_read)
        store_wake = StoreWake(store, pool)
        pool.warm_up()  # the workers load the project while the engine recovers
        engine = Engine(
            store,
            project,
            pool,
            cache_size=config.cache_size,
            decision_timeout=config.decision_timeout,
            log=log,
            background_commits=True,
            timezone=config.timezone,
        )
        if config.reload if reload is None else reload:
            from zenaton_runtime.project import reload as hot  # imports watchdog: only when watching

            reloader = hot.start(config, engine, pool, log)
        heartbeat = Heartbeat(store, engine, pool, env=config.env, workers=workers, log=log, lease_ttl=config.lease_ttl)
        recovered = heartbeat.start()
        retention = Retention(store, engine, config.retention, log=log)
        log(
            f"zenaton daemon started (pid {os.getpid()}, env {config.env}, {workers} workers, "
            f"store {redacted(config.store_url)}); {recovered} interrupted task(s) re-queued"
            + ("; watching for changes" if reloader else "")
        )
        systemd.send(READY="1", STATUS=f"running, {workers} workers, env {config.env}")
        flush_log = getattr(log, "flush", lambda: None)  # a log may gather a step's lines
        busy, warm = True, False
        while not stopping:
            flush_log()
            if not busy:
                store_wake.refresh(wanted=engine.lookout.change_due_in() == math.inf)
            idle_poll = IDLE_POLL if store_wake.fd is None else IDLE_FALLBACK
            timeout = STORE_RETRY if engine.store_failure else 0.0 if busy else _idle_timeout(engine, idle_poll)
            settling = reloader.due_in() if reloader is not None else None
            if settling is not None:  # changed files: look again once they have settled, not at the next poll
                timeout = min(timeout, settling)
            busy = engine.step(timeout) > 0
            if heartbeat.poll() > 0:
                busy = True
            if retention.poll() > 0:
                busy = True
            if reloader is not None and reloader.poll():
                busy = True
            if not warm and pool.all_ready():  # said once: from now on no task waits for a worker to start
                warm = True
                log(f"{workers} workers ready")
        engine.settle()  # a step still committing: logged, and its tasks go to the workers like the others
        log("stopping: waiting for running tasks to finish")
        systemd.send(STOPPING="1", STATUS="stopping: waiting for running tasks to finish")
        flush_log()
        engine.claiming = False
        finished, unfinished = pool.shutdown(config.stop_grace)
        engine.take_outcomes(finished)
        engine.step(0.0)
        engine.settle()
        heartbeat.stop()  # attempts cut short run again next time, here or on another daemon
        log(f"zenaton daemon stopped ({len(unfinished)} task(s) re-queued)")
        return 0
    finally:
        getattr(log, "flush", lambda: None)()
        if pool is not None:
            pool.close()
        if reloader is not None:
            reloader.stop()
        store.close()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)


class Retention:
    """``[retention]`` applied in the background: from the daemon's loop, between two steps,
    once ``interval`` seconds have passed (``backlog`` after a full batch), a batch of finished
    instances is removed in one ``prune`` transaction: those of a status with a retention, last
    updated longer ago than it (``Store.prunable``). A batch holds as many instances as the last
    ones' cost says fit in ``budget`` seconds (at most ``batch``): a step that becomes due meanwhile
    waits about that long at most. The engine lands its commit in flight first, so the prune never
    writes beside a step's commit. What it removed is logged; a prune that fails is logged once
    and tried again later: it never stops the daemon."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        retention: dict[str, float],
        *,
        log: Callable[[str], None],
        interval: float = RETENTION_INTERVAL,
        backlog: float = RETENTION_BACKLOG,
        batch: int = RETENTION_BATCH,
        budget: float = RETENTION_BUDGET,
        monotonic: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.store, self.engine, self.log = store, engine, log
        self.retention = {InstanceStatus(status): seconds for status, seconds in retention.items()}
        self.interval, self.backlog, self.batch, self.budget = interval, backlog, batch, budget
        self._monotonic, self._timer = monotonic, timer
        self._size = min(batch, RETENTION_FIRST)  # instances the next batch may hold
        self._last = monotonic()
        self._wait = interval
        self.pruned = 0  # since the daemon started
        self.failure: Exception | None = None

    def poll(self) -> int:
        """Prune a batch if it is time. Returns how many tasks went to the workers because the
        engine's commit in flight was landed first."""
        if not self.retention or self._monotonic() - self._last < self._wait:
            return 0
        handed = self.engine.settle()
        started = self._timer()
        try:
            by_status = self.prune_batch()
        except Exception as error:
            if self.failure is None:
                self.log(f"retention: cannot prune finished instances: {error}; trying again later")
            self.failure, self._wait = error, self.interval
        else:
            self.failure = None
            gone = sum(by_status.values())
            self._wait = self.backlog if gone >= self._size else self.interval
            if gone:  # the next batch: what fits in the budget at this one's cost per instance
                each = (self._timer() - started) / gone
                fits = round(self.budget / each) if each > 0 else self.batch
                self._size = max(1, min(self.batch, fits, 2 * self._size))
            if gone:
                self.pruned += gone
                detail = ", ".join(f"{status.value} {n}" for status, n in by_status.items() if n)
                self.log(f"retention: pruned {gone} finished instance(s) ({detail})")
        self._last = self._monotonic()
        return handed

    def prune_batch(self) -> dict[InstanceStatus, int]:
        """One batch, the statuses in turn (one prune each, its cutoff checked again inside it);
        how many of each went."""
        now = self.engine.clock.now()
        counts: dict[InstanceStatus, int] = {}
        left = self._size
        for status, keep in self.retention.items():
            if left <= 0:
                break
            found = self.store.prunable([status], now - keep, left)
            if found:
                counts[status] = self.store.prune(found, before=now - keep)
                left -= len(found)
        return counts


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _idle_timeout(engine: Engine, idle_poll: float = IDLE_POLL) -> float:
    """Until the next timer, retry or schedule, or a change waiting out the store's look delay;
    at most ``idle_poll`` (other writers are seen then, or sooner when the store wakes the daemon)."""
    try:
        due = engine.lookout.next_due()
    except StoreError:  # the next step meets the same store and handles its failure
        return IDLE_POLL
    return max(0.0, min(idle_poll, due - engine.clock.now(), engine.lookout.change_due_in()))


class StoreWake:
    """The store's wake-up file descriptor (``Store.wakeup_fd``: on PostgreSQL, the LISTENing
    connection's socket) in the worker pool's select, beside the workers and the signal pipe:
    an idle daemon wakes as soon as another process notifies, and the step it then runs reads
    the notification off (``changes()``), so the fd does not stay readable. Asked again before
    each idle wait: a reconnection brings a new socket. One closed and reopened under the same
    number has left the kernel's watch list with the old socket, so the fd is registered again
    at least every ``renew`` seconds (two system calls). Not wanted while a change already seen
    waits out the store's look delay (the daemon wakes for it then): the notifications that come
    meanwhile are taken in by that look, never each one by a step of its own (news of its own
    instances among them waits as long, FOLLOWER_DELAY at most)."""

    def __init__(
        self,
        store: Store,
        pool: WorkerPool,
        *,
        renew: float = IDLE_FALLBACK,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.pool, self.renew = store, pool, renew
        self._monotonic = monotonic
        self.fd: int | None = None  # registered in the pool now
        self._registered = -math.inf  # monotonic time it was

    def refresh(self, wanted: bool = True) -> None:
        fd = self.store.wakeup_fd() if wanted else None
        now = self._monotonic()
        if fd == self.fd and (fd is None or now - self._registered < self.renew):
            return
        if self.fd is not None:
            self.pool.remove_wake_fd(self.fd)
        if fd is not None:
            self.pool.add_wake_fd(fd)
        self.fd, self._registered = fd, now


class Heartbeat:
    """The daemon's record in the store (``models.DaemonRecord``) and its lease: written when it
    starts, again from its loop once ``interval`` seconds have passed (``poll``, cheap between two
    beats), removed when it stops cleanly. Each write is its own small transaction, never part of
    a step. A write that fails (the store refuses writes, the disk is full) is logged once and
    tried again at the next beat: it never stops the daemon.

    The lease (``Store.take_lease``: what lets several daemons share a PostgreSQL store) is
    renewed on the loop's thread, never from a side thread: a daemon whose loop is stuck must
    lose it. A renewal that finds it ran out (the daemon was frozen past ``lease_ttl``) drops
    every instance the engine held, which other daemons may drive now, and takes a new lease
    under a new id."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        runner: Runner,
        *,
        env: str,
        workers: int,
        log: Callable[[str], None],
        lease_ttl: float = 15.0,
        interval: float = HEARTBEAT_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.engine, self.runner = store, engine, runner
        self.env, self.workers, self.log, self.interval = env, workers, log, interval
        self.lease_ttl = lease_ttl
        self._monotonic = monotonic
        self.id = os.urandom(16).hex()  # one per daemon run
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = engine.clock.now()
        self._last = monotonic()  # of the last beat
        self._last_steps = 0
        self.failure: Exception | None = None  # the last write that failed, until one succeeds

    def start(self) -> int:
        """Remove this host's dead daemons' records (stale, or their process is gone: a daemon
        killed here, whose lease then ends at once), write this one's and take its lease; how
        many interrupted tasks were re-queued."""
        try:
            now = self.engine.clock.now()
            for record in self.store.daemons():
                if record.host == self.host and (not record.alive(now) or not _process_exists(record.pid)):
                    self.store.remove_daemon(record.id)
        except Exception as error:
            self.log(f"cannot read the daemons' records in the store: {error}")
        self.beat()
        return self.store.take_lease(self.id, self.lease_ttl)

    def poll(self) -> int:
        """Beat if ``interval`` seconds have passed since the last beat. Returns how many tasks
        went to the workers because the engine's commit in flight was landed first."""
        if self._monotonic() - self._last < self.interval:
            return 0
        return self.beat()

    def beat(self) -> int:
        """Write the record now; how many tasks the engine handed on while landing its commit."""
        handed = self.engine.settle()  # the engine lands its commit in flight, not this write
        monotonic, steps = self._monotonic(), self.engine.stats.steps
        elapsed = monotonic - self._last
        rate = (steps - self._last_steps) / elapsed if elapsed > 0 else 0.0
        self._last, self._last_steps = monotonic, steps
        try:
            self.store.heartbeat(self.record(round(rate, 2)))
            if not self.store.renew_lease():
                self._lease_ran_out()
        except Exception as error:
            if self.failure is None:
                self.log(f"cannot write the daemon's record to the store: {error}; carrying on")
            self.failure = error
            return handed
        if self.failure is not None:
            self.log("the daemon's record is written to the store again")
            self.failure = None
        return handed

    def record(self, steps_per_second: float) -> DaemonRecord:
        engine = self.engine
        now = engine.clock.now()
        return DaemonRecord(
            id=self.id,
            host=self.host,
            pid=self.pid,
            env=self.env,
            version=__version__,
            started_at=self.started_at,
            heartbeat_at=now,
            workers=self.workers,
            busy_workers=self.runner.busy(),
            instances_held=len(engine.cache),
            queue_depth=self.store.queue_depth(now),
            steps=engine.stats.steps,
            steps_per_second=steps_per_second,
            stats=engine.stats.to_json(),
        )

    def _lease_ran_out(self) -> None:
        dropped = self.engine.drop_everything()
        old = self.id
        self.id = os.urandom(16).hex()
        self.store.remove_daemon(old)
        self.store.take_lease(self.id, self.lease_ttl)
        self.store.heartbeat(self.record(0.0))
        self.engine.stats.instances_lost += dropped
        self.log(f"lease expired: dropped {dropped} instance(s); carrying on as {self.id[:8]}")

    def stop(self) -> int:
        """A clean stop: let go of the lease (the running tasks of its instances back to the
        queue) and remove the record; how many tasks were re-queued."""
        requeued = 0
        try:
            requeued = self.store.release()
        except Exception as error:
            self.log(f"cannot release the daemon's instances: {error}; they are taken over when its lease ends")
        try:
            self.store.remove_daemon(self.id)
        except Exception as error:
            self.log(f"cannot remove the daemon's record from the store: {error}")
        return requeued

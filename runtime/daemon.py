"""The daemon: one engine, a worker pool, signals, a pid lock and crash recovery."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from zenaton_runtime.engine.engine import Engine
from zenaton_runtime.errors import StoreError
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.pool.worker_pool import WorkerPool
from zenaton_runtime.project.config import Config
from zenaton_runtime.project.loader import SourceSnapshot, load_project
from zenaton_runtime.store import open_store

IDLE_POLL = 0.05  # seconds between looks at the store when nothing is happening
STORE_RETRY = 1.0  # seconds between write attempts while the store refuses them (disk full)


def run_daemon(
    config: Config, *, concurrency: int | None = None, log: Callable[[str], None] = print, reload: bool | None = None
) -> int:
    """Run in the foreground until SIGINT/SIGTERM; returns the exit code.

    ``reload`` (default: the config's ``daemon.reload``) watches the project's files and
    loads changed code between two steps (zenaton_runtime.project.reload).
    """
    for name, value in config.dotenv.items():  # tasks read the project's .env, as under the original agent
        os.environ.setdefault(name, value)
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
        pool.warm_up()  # the workers load the project while the engine recovers
        engine = Engine(
            store,
            project,
            pool,
            cache_size=config.cache_size,
            decision_timeout=config.decision_timeout,
            log=log,
            background_commits=True,
        )
        if config.reload if reload is None else reload:
            from zenaton_runtime.project import reload as hot  # imports watchdog: only when watching

            reloader = hot.start(config, engine, pool, log)
        recovered = store.recover()
        log(
            f"zenaton daemon started (pid {os.getpid()}, env {config.env}, {workers} workers, "
            f"store {config.store_url}); {recovered} interrupted task(s) re-queued"
            + ("; watching for changes" if reloader else "")
        )
        flush_log = getattr(log, "flush", lambda: None)  # a log may gather a step's lines
        busy = True
        while not stopping:
            flush_log()
            timeout = STORE_RETRY if engine.store_failure else 0.0 if busy else _idle_timeout(engine)
            busy = engine.step(timeout) > 0
            if reloader is not None and reloader.poll():
                busy = True
        engine.settle()  # a step still committing: logged, and its tasks go to the workers like the others
        log("stopping: waiting for running tasks to finish")
        flush_log()
        engine.claiming = False
        finished, unfinished = pool.shutdown(config.stop_grace)
        engine.take_outcomes(finished)
        engine.step(0.0)
        engine.settle()
        store.recover()  # attempts cut short run again next time
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


def _idle_timeout(engine: Engine) -> float:
    """Until the next timer, retry or schedule, at most IDLE_POLL (other writers are seen then)."""
    try:
        due = engine.lookout.next_due()
    except StoreError:  # the next step meets the same store and handles its failure
        return IDLE_POLL
    return max(0.0, min(IDLE_POLL, due - engine.clock.now()))

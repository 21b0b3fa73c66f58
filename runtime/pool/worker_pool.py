"""The task pool: warm worker processes that run attempts, with deadlines and crash detection.

Owns the processes: starting them, writing attempts to them, reading their outcomes, deadlines,
reaping, code reload and shutdown. Which worker takes which attempt is ``placement``'s call.
A ``Runner`` (``zenaton_runtime.pool.runner``).

Single-threaded: the daemon calls ``submit_many`` and ``poll`` from its loop. Workers are
started lazily, up to ``concurrency``, and reused; ``recycle`` (code reload) replaces
them, idle ones at once, busy ones once their current attempt has reported. An attempt
that outlives its ``max_time`` gets its worker SIGKILLed and a ``TaskTimeoutError``
outcome; a worker that dies mid-attempt gives a ``TaskCrashedError`` outcome. Nothing a task
does makes ``poll`` raise: the one exception is ``WorkerStartError``, when the project itself
cannot be loaded.
"""

from __future__ import annotations

import selectors
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.pool import failures, placement
from zenaton_runtime.pool.attempts import Attempt, Outcome
from zenaton_runtime.pool.worker_process import Launcher, WorkerProcess, describe_exit

__all__ = ["PoolFullError", "WorkerPool", "WorkerStartError"]

EXIT_WAIT = 2.0  # seconds a worker that closed its pipe gets to exit before SIGKILL
NO_PIDFD_TICK = 1.0  # without pidfds, how often to look for dead workers


class WorkerStartError(ZenatonError):
    """A worker process could not load the project. ``attempts`` never started."""

    def __init__(self, message: str, attempts: list[Attempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


class PoolFullError(ZenatonError):
    """``submit`` was called with no free slot, or after shutdown."""


class WorkerPool:
    def __init__(
        self,
        project: Any,
        *,
        root: str | Path,
        boot: str | None = None,
        module: str | None = None,
        store_url: str,
        concurrency: int = 8,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.concurrency = max(1, concurrency)
        self._launcher = Launcher(root=str(root), store_url=store_url, boot=boot, module=module, env=env)
        self._workers: list[WorkerProcess] = []
        self._selector = selectors.DefaultSelector()
        self._wake_fds: set[int] = set()
        self._outbox: list[Outcome] = []  # finished while an exception was being raised
        self._backlog: list[Attempt] = []  # accepted, not yet placed on a worker
        self._fatal: WorkerStartError | None = None
        self._closing = False
        self._closed = False
        self._keep_warm = False  # replace retired and dead workers at once (see warm_up)
        self._speeds = placement.TaskSpeeds()  # which task classes are quick
        self._generation = 0
        self._stale = False  # some worker runs an older generation of the code
        self._launcher.load(project, self._generation)

    # -- capacity -----------------------------------------------------------------------

    def free_slots(self) -> int:
        """How many attempts can start now or queue behind a quick one."""
        if self._closing or self._fatal is not None:
            return 0
        return placement.free_slots(
            self._workers,
            concurrency=self.concurrency,
            waiting=len(self._backlog),
            generation=self._generation,
            now=time.time(),
            speeds=self._speeds,
        )

    def busy(self) -> int:
        """Attempts accepted and not yet reported."""
        return sum(len(w.queue) for w in self._workers) + len(self._backlog)

    def running(self) -> list[Attempt]:
        return [w.attempt for w in self._workers if w.attempt is not None]

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    def add_wake_fd(self, fd: int) -> None:
        """Make ``poll`` return early (without reading it) when ``fd`` becomes readable."""
        if fd not in self._wake_fds:
            self._selector.register(fd, selectors.EVENT_READ, None)
            self._wake_fds.add(fd)

    def remove_wake_fd(self, fd: int) -> None:
        if fd in self._wake_fds:
            self._selector.unregister(fd)
            self._wake_fds.discard(fd)

    def warm_up(self) -> None:
        """Start every worker now, and from now on replace at once any that exits (code reload,
        a crash, a timeout): the first tasks never wait for a process to start."""
        self._keep_warm = True
        self._top_up()

    def all_ready(self) -> bool:
        """Whether every worker has loaded the project: a task starts at once on any of them."""
        return all(w.ready for w in self._workers)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until every worker has loaded the project; False if ``timeout`` ran out first.
        Raises WorkerStartError if the project cannot be loaded."""
        end = time.monotonic() + max(0.0, timeout)
        while any(not w.ready for w in self._workers):
            if time.monotonic() >= end:
                return False
            outcomes: list[Outcome] = []
            self._wait_once(end, outcomes, wake=False)
            self._outbox += outcomes
        return True

    def _top_up(self) -> None:
        if self._keep_warm and not self._closing and self._fatal is None:
            while len(self._workers) < self.concurrency:
                self._spawn()

    # -- work ---------------------------------------------------------------------------

    def submit(self, attempt: Attempt) -> None:
        self.submit_many([attempt])

    def submit_many(self, attempts: list[Attempt]) -> None:
        """Hand the attempts to the workers as ``placement`` decides (starting the workers it
        needs); those that find no place wait in the pool for the first worker to free up. Each
        worker gets its share in one write: one wake-up, however many attempts."""
        if self._fatal is not None:
            raise self._fatal
        if self._closing:
            raise PoolFullError("the task pool is shutting down")
        self._retire_stale()
        self._backlog += self._place(attempts)

    def _place(self, attempts: list[Attempt]) -> list[Attempt]:
        """One hand-off: place ``attempts``, write them to their workers; returns those left over."""
        for _ in range(placement.spawns(self._workers, concurrency=self.concurrency, count=len(attempts))):
            self._spawn()
        left = placement.place(
            attempts, self._workers, generation=self._generation, now=time.time(), speeds=self._speeds
        )
        for worker in self._workers:
            if worker.sent < len(worker.queue):
                worker.send_pending()
        return left

    def _place_backlog(self) -> None:
        if self._backlog and not self._closing and self._fatal is None:
            self._backlog = self._place(self._backlog)

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes finished within ``timeout`` seconds (returns as soon as there is one,
        or a wake fd is readable)."""
        return self._poll(timeout, wake=True)

    def _poll(self, timeout: float, wake: bool) -> list[Outcome]:
        outcomes, self._outbox = self._outbox, []
        now = time.monotonic()
        end = now + max(0.0, timeout)
        spin_until = min(end, now + placement.spin(self._workers, self._speeds))
        while True:
            # Spinning briefly on a result due any moment spares the wake-up of a sleeping daemon.
            woke = self._wait_once(now if time.monotonic() < spin_until else end, outcomes, wake)
            outcomes += self._enforce_deadlines()
            self._retire_stale()
            self._top_up()
            self._place_backlog()
            if outcomes or woke or time.monotonic() >= end:
                return outcomes

    # -- code reload --------------------------------------------------------------------

    def recycle(self, project: Any) -> None:
        """Run the new ``project`` from now on, in new workers.

        Idle workers and workers still loading are stopped now (an attempt waiting for
        one goes to a new worker); a worker running an attempt finishes it, its outcome
        is reported as usual, and only then is it stopped. Nothing is lost or failed.
        """
        previous = self._launcher.load(project, self._generation + 1)  # first: a failed write changes nothing
        self.project = project
        self._fatal = None  # a start-up failure of the previous code says nothing of this one
        self._generation += 1
        self._stale = True  # workers of the previous code go once their attempt has reported
        waiting = [a for w in self._workers for a in w.abandon_pending()]
        self._retire_stale()  # before the previous code's file goes: only workers that loaded it are left
        self._launcher.discard(previous)
        for attempt in waiting:
            self.submit(attempt)

    def _retire_stale(self) -> None:
        if not self._stale:
            return
        for worker in [w for w in self._workers if w.generation != self._generation and w.attempt is None]:
            worker.close_stdin()
            self._remove(worker)
        self._stale = any(w.generation != self._generation for w in self._workers)

    # -- messages, deadlines, deaths ----------------------------------------------------

    def _wait_once(self, end: float, outcomes: list[Outcome], wake: bool) -> bool:
        now = time.monotonic()
        limit = end - now
        deadlines = [w.deadline for w in self._workers if w.deadline is not None]
        if deadlines:
            limit = min(limit, min(deadlines) - now)
        if any(w.pidfd is None for w in self._workers):
            limit = min(limit, NO_PIDFD_TICK)
        if not self._selector.get_map():
            time.sleep(max(0.0, limit))  # nothing to wait on: no worker, no wake fd
            return False
        woke = False
        for key, _ in self._selector.select(max(0.0, limit)):
            if key.data is None:
                woke = woke or wake
            else:
                self._on_readable(key.data, outcomes)
        for worker in [w for w in self._workers if w.pidfd is None and w.exited()]:
            self._reap(worker, outcomes)
        return woke

    def _on_readable(self, worker: WorkerProcess, outcomes: list[Outcome]) -> None:
        if worker not in self._workers:
            return  # reaped earlier in this round
        try:
            messages, eof = worker.read_messages()
            for message in messages:
                self._on_message(worker, message, outcomes)
        except (ValueError, TypeError, KeyError) as error:  # not our protocol: the worker is broken
            worker.kill()
            self._reap(worker, outcomes, reason=f"protocol error: {error}")
            return
        if eof or (worker in self._workers and worker.exited()):
            self._reap(worker, outcomes)

    def _on_message(self, worker: WorkerProcess, message: dict[str, Any], outcomes: list[Outcome]) -> None:
        if "outcome" in message:
            outcome = Outcome.from_list(message["outcome"])
            outcomes.append(outcome)
            if worker.attempt is not None:
                self._speeds.note(worker.attempt.name, outcome.finished_at - outcome.started_at)
            worker.finish()
        elif "ready" in message:
            worker.ready = True
            if not self._closing:
                worker.send_pending()
        elif "fatal" in message:
            self._on_fatal(str(message["fatal"]), outcomes)

    def _on_fatal(self, text: str, outcomes: list[Outcome], attempts: list[Attempt] | None = None) -> None:
        # Workers still loading load the same broken code: stop them all, start nothing new.
        attempts = list(attempts or [])
        for worker in [w for w in self._workers if not w.ready]:
            attempts += list(worker.queue)
            worker.queue.clear()
            worker.kill()
            self._reap(worker, outcomes)
        self._fatal = WorkerStartError(f"task worker failed to start: {text}", attempts)
        self._outbox += outcomes
        outcomes.clear()
        raise self._fatal

    def _enforce_deadlines(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        now = time.monotonic()
        for worker in [w for w in self._workers if w.deadline is not None and w.deadline <= now]:
            self._on_readable(worker, outcomes)  # a result already written beat the deadline
            if worker not in self._workers or worker.deadline is None or worker.deadline > now:
                continue
            attempt, started_at = worker.attempt, worker.started_at
            assert attempt is not None and started_at is not None
            self._speeds.note(attempt.name, time.time() - started_at)
            self._backlog += worker.take_waiting()  # queued behind it, never started: they run elsewhere
            worker.kill()
            output = worker.captured_output()
            self._remove(worker)
            outcomes.append(failures.timed_out(self.project, attempt, output, started_at, time.time()))
        return outcomes

    def _reap(self, worker: WorkerProcess, outcomes: list[Outcome], reason: str | None = None) -> None:
        """Collect a worker that is dead (or must be): report what it was doing."""
        outcomes += worker.last_outcomes()  # an outcome may have been written just before it died
        code = worker.wait_exit(EXIT_WAIT)
        output = worker.captured_output()
        if worker.ready:
            self._backlog += worker.take_waiting()  # queued behind the one that died: never started
        attempt, started_at = worker.attempt, worker.started_at
        startup_output = worker.stderr_tail().strip() if started_at is None else ""
        self._remove(worker)
        if attempt is None:
            return
        if started_at is None:  # died while loading the project, with no word why
            detail = startup_output or reason or "no output"
            text = f"worker exited ({describe_exit(code)}) before it was ready: {detail}"
            self._on_fatal(text, outcomes, list(worker.queue))
        now = time.time()
        if started_at is not None:  # (_on_fatal raises otherwise)
            self._speeds.note(attempt.name, now - started_at)
        how = reason or describe_exit(code)
        outcomes.append(failures.crashed(self.project, attempt, how, output, started_at or now, now))

    # -- processes ----------------------------------------------------------------------

    def _spawn(self) -> WorkerProcess:
        worker = self._launcher.start(self._generation)
        self._workers.append(worker)
        self._selector.register(worker.stdout_fd, selectors.EVENT_READ, worker)
        if worker.pidfd is not None:
            self._selector.register(worker.pidfd, selectors.EVENT_READ, worker)
        return worker

    def _remove(self, worker: WorkerProcess) -> None:
        for fd in (worker.stdout_fd, worker.pidfd):
            if fd is not None and fd in self._selector.get_map():
                self._selector.unregister(fd)
        worker.dispose(EXIT_WAIT)
        if worker in self._workers:
            self._workers.remove(worker)

    # -- shutdown -----------------------------------------------------------------------

    def shutdown(self, grace: float) -> tuple[list[Outcome], list[Attempt]]:
        """Stop taking work, give running attempts ``grace`` seconds, kill the rest.

        Returns (outcomes finished meanwhile, attempts that did not finish). Attempts
        waiting for a worker that had not loaded the project yet count as unfinished; those
        already written behind a running one may still run in the grace period.
        """
        self._closing = True
        for fd in list(self._wake_fds):  # still readable after the caller's wake-up: would spin
            self.remove_wake_fd(fd)
        unfinished = self._backlog + [a for w in self._workers for a in w.abandon_pending()]
        self._backlog = []
        outcomes: list[Outcome] = []
        end = time.monotonic() + max(0.0, grace)
        while self.busy() and time.monotonic() < end:
            try:
                outcomes += self._poll(end - time.monotonic(), wake=False)
            except WorkerStartError as error:
                unfinished += error.attempts
        outcomes += self._outbox
        self._outbox = []
        for worker in list(self._workers):
            if worker.queue:  # the one running and those written behind it
                unfinished += list(worker.queue)
                worker.kill()
            else:
                worker.close_stdin()  # idle workers exit on EOF
        for worker in list(self._workers):
            worker.wait_exit(EXIT_WAIT)
            self._remove(worker)
        return outcomes, unfinished

    def close(self) -> None:
        if self._closed:
            return
        self.shutdown(0)
        self._closed = True
        self._selector.close()
        self._launcher.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:  # mypy checks that it is a Runner, signatures included
    from zenaton_runtime.pool.runner import Runner

    _IS_A_RUNNER: type[Runner] = WorkerPool

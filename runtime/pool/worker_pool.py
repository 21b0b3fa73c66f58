"""The task pool: warm worker processes that run attempts, with deadlines and crash detection.

Single-threaded: the daemon calls ``submit`` and ``poll`` from its loop. Workers are
started lazily, up to ``concurrency``, and reused; ``recycle`` (code reload) replaces
them, idle ones at once, busy ones once their current attempt has reported. An attempt
that outlives its ``max_time`` gets its worker SIGKILLed and a ``TaskTimeoutError``
outcome; a worker that dies mid-attempt gives a ``TaskCrashedError`` outcome. Nothing a task does makes ``poll``
raise: the one exception is ``WorkerStartError``, when the project itself cannot be loaded.
"""

from __future__ import annotations

import os
import selectors
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zenaton.exceptions import TaskCrashedError, TaskTimeoutError
from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.pool.attempts import Attempt, Outcome, classify
from zenaton_runtime.pool.worker_process import WorkerProcess, describe_exit
from zenaton_runtime.timing import retry

__all__ = ["PoolFullError", "WorkerPool", "WorkerStartError"]

EXIT_WAIT = 2.0  # seconds a worker that closed its pipe gets to exit before SIGKILL
PIPELINE_DEPTH = 4  # attempts a busy worker may have queued (the running one included)
QUICK_DEPTH = 16  # the same when all of them are of quick task classes (see QUICK_TASK)
PIPELINE_YOUNG = 0.05  # seconds: only queue behind an attempt that started this recently (a quick one)
NO_PIDFD_TICK = 1.0  # without pidfds, how often to look for dead workers
QUICK_TASK = 0.002  # seconds: a task class whose attempts recently took less is "quick"
SPIN = 0.0005  # seconds poll looks (without sleeping) for the result of running quick attempts


class _Handoff:
    """What one hand-off of attempts learns of the workers, so that each placement is cheap:
    the workers it found idle (-> whether it gave them only quick attempts), and the workers busy
    with a just-started attempt (-> how deep their queue may grow)."""

    __slots__ = ("behind", "shares")

    def __init__(self) -> None:
        self.shares: dict[WorkerProcess, bool] = {}
        self.behind: dict[WorkerProcess, int] | None = None


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
        self._root = str(root)
        self._args = ["--root", self._root, "--store", store_url, "--parent", str(os.getpid())]
        if module:
            self._args += ["--module", module]
        elif boot:
            self._args += ["--boot", boot]
        self._env = {**os.environ, **(env or {})}
        self._workers: list[WorkerProcess] = []
        self._selector = selectors.DefaultSelector()
        self._wake_fds: set[int] = set()
        self._outbox: list[Outcome] = []  # finished while an exception was being raised
        self._backlog: list[Attempt] = []  # accepted, not yet placed on a worker
        self._fatal: WorkerStartError | None = None
        self._closing = False
        self._closed = False
        self._keep_warm = False  # replace retired and dead workers at once (see warm_up)
        self._durations: dict[str, float] = {}  # task class name -> recent attempt duration (s)
        self._tmp = tempfile.mkdtemp(prefix="zenaton-pool-")
        self._generation = 0
        self._stale = False  # some worker runs an older generation of the code
        self._sources = self._write_sources(project)

    # -- capacity -----------------------------------------------------------------------

    def free_slots(self) -> int:
        """How many attempts can start now or queue behind a quick one."""
        if self._closing or self._fatal is not None:
            return 0
        idle = self.concurrency - len(self._workers) + sum(1 for w in self._workers if not w.queue)
        behind = sum(max(0, self._depth(w) - len(w.queue)) for w in self._workers if w.queue and self._quick(w))
        return max(0, idle + behind - len(self._backlog))

    def _is_quick(self, name: str) -> bool:
        """Attempts of this task class have recently taken next to no time."""
        return self._durations.get(name, QUICK_TASK) < QUICK_TASK

    def _all_quick(self) -> bool:
        """Some attempts are running, all of quick task classes."""
        running = [w.queue[0].name for w in self._workers if w.queue]
        return bool(running) and all(self._is_quick(name) for name in running)

    def _depth(self, worker: WorkerProcess) -> int:
        """How many attempts may wait in this worker: more while all of them are of quick classes
        (judged now: a class turns slow as soon as one of its attempts reports so)."""
        return QUICK_DEPTH if all(self._is_quick(a.name) for a in worker.queue) else PIPELINE_DEPTH

    def busy(self) -> int:
        """Attempts accepted and not yet reported."""
        return sum(len(w.queue) for w in self._workers) + len(self._backlog)

    def _quick(self, worker: WorkerProcess) -> bool:
        """Busy with an attempt that started just now, on the current code: worth queueing behind."""
        started = worker.started_at
        current = worker.generation == self._generation
        return current and worker.ready and started is not None and time.time() - started < PIPELINE_YOUNG

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
        """Hand each attempt to an idle worker (starting one if needed), or queue it behind a
        quick one; failing both, it waits in the pool for the first worker to free up. Each
        worker gets its share in one write: one wake-up, however many attempts."""
        if self._fatal is not None:
            raise self._fatal
        if self._closing:
            raise PoolFullError("the task pool is shutting down")
        self._retire_stale()
        handoff = _Handoff()
        for attempt in attempts:
            if not self._place(attempt, handoff):
                self._backlog.append(attempt)
        self._send()

    def _send(self) -> None:
        for worker in self._workers:
            if worker.sent < len(worker.queue):
                worker.send_pending()

    def _place(self, attempt: Attempt, handoff: _Handoff) -> bool:
        """An idle worker first; then, for a quick task class, the least loaded of the workers
        this hand-off found idle and gave only quick attempts (a share of an even split); then
        behind an attempt that just started."""
        quick = self._is_quick(attempt.name)
        worker = next((w for w in self._workers if not w.queue), None)
        if worker is None and len(self._workers) < self.concurrency:
            worker = self._spawn()
        if worker is not None:
            handoff.shares[worker] = quick
        elif quick:
            fresh = [
                w
                for w, all_quick in reversed(handoff.shares.items())
                if all_quick and w.can_queue(attempt, QUICK_DEPTH)
            ]
            worker = min(fresh, key=lambda w: len(w.queue), default=None)
        if worker is None:
            if handoff.behind is None:
                handoff.behind = {w: self._depth(w) for w in self._workers if self._quick(w)}
            depth = QUICK_DEPTH if quick else PIPELINE_DEPTH
            behind = [w for w, most in handoff.behind.items() if w.can_queue(attempt, min(depth, most))]
            worker = min(behind, key=lambda w: len(w.queue), default=None)
            if worker is not None and not quick:
                handoff.behind[worker] = PIPELINE_DEPTH
        if worker is None:
            return False
        worker.assign(attempt)
        return True

    def _place_backlog(self) -> None:
        if self._closing or self._fatal is not None:
            return
        waiting, self._backlog = self._backlog, []
        handoff = _Handoff()
        for attempt in waiting:
            if not self._place(attempt, handoff):
                self._backlog.append(attempt)
        if waiting:
            self._send()

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes finished within ``timeout`` seconds (returns as soon as there is one,
        or a wake fd is readable)."""
        return self._poll(timeout, wake=True)

    def _poll(self, timeout: float, wake: bool) -> list[Outcome]:
        outcomes, self._outbox = self._outbox, []
        now = time.monotonic()
        end = now + max(0.0, timeout)
        spin_until = min(end, now + SPIN) if self._all_quick() else now
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
        self.project = project
        self._fatal = None  # a start-up failure of the previous code says nothing of this one
        self._generation += 1
        self._stale = True  # workers of the previous code go once their attempt has reported
        previous, self._sources = self._sources, self._write_sources(project)
        waiting = [a for w in self._workers for a in w.abandon_pending()]
        self._retire_stale()
        if previous:
            Path(previous[1]).unlink(missing_ok=True)  # only workers that already loaded used it
        for attempt in waiting:
            self.submit(attempt)

    def _retire_stale(self) -> None:
        if not self._stale:
            return
        for worker in [w for w in self._workers if w.generation != self._generation and w.attempt is None]:
            worker.close_stdin()
            self._remove(worker)
        self._stale = any(w.generation != self._generation for w in self._workers)

    def _write_sources(self, project: Any) -> list[str]:
        """The worker arguments that make it import the daemon's snapshot of the code."""
        snapshot = getattr(project, "snapshot", None)
        if snapshot is None:
            return []
        path = Path(self._tmp) / f"sources-{self._generation}.json"
        snapshot.write(path)
        return ["--sources", str(path)]

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
                self._note_duration(worker.attempt.name, outcome.finished_at - outcome.started_at)
            worker.finish()
        elif "ready" in message:
            worker.ready = True
            if not self._closing:
                worker.send_pending()
        elif "fatal" in message:
            self._on_fatal(str(message["fatal"]), outcomes)

    def _note_duration(self, name: str, seconds: float) -> None:
        """A moving average of how long attempts of each task class take."""
        before = self._durations.get(name)
        self._durations[name] = seconds if before is None else 0.8 * before + 0.2 * seconds

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
            self._note_duration(attempt.name, time.time() - started_at)
            self._backlog += worker.take_waiting()  # queued behind it, never started: they run elsewhere
            worker.kill()
            stdout, stderr = worker.captured_output()
            self._remove(worker)
            error = TaskTimeoutError(
                f"task {attempt.name} ({attempt.task_id}) ran longer than its "
                f"max_processing_time of {attempt.max_time:g} s"
            )
            outcomes.append(self._failure(attempt, error, started_at, stdout, stderr))
        return outcomes

    def _reap(self, worker: WorkerProcess, outcomes: list[Outcome], reason: str | None = None) -> None:
        """Collect a worker that is dead (or must be): report what it was doing."""
        try:
            messages, _ = worker.read_messages()
        except ValueError:
            messages = []
        for message in messages:  # an outcome may have been written just before it died
            if "outcome" in message:
                try:
                    outcomes.append(Outcome.from_list(message["outcome"]))
                    worker.finish()
                except TypeError:
                    pass
        code = worker.wait_exit(EXIT_WAIT)
        stdout, stderr = worker.captured_output()
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
        how = reason or describe_exit(code)
        if started_at is not None:  # (_on_fatal raises otherwise)
            self._note_duration(attempt.name, time.time() - started_at)
        error = TaskCrashedError(f"worker process died ({how}) while running task {attempt.name} ({attempt.task_id})")
        outcomes.append(self._failure(attempt, error, started_at or time.time(), stdout, stderr))

    def _failure(self, attempt: Attempt, error: BaseException, started_at: float, stdout: str, stderr: str) -> Outcome:
        return classify(
            attempt.task_id,
            result=None,
            error=error,
            retry_delay=self._retry_delay(attempt, error),
            stdout=stdout,
            stderr=stderr,
            started_at=started_at,
            finished_at=time.time(),
        )

    def _retry_delay(self, attempt: Attempt, error: BaseException) -> float | None:
        try:
            task = self.project.codec.decode(attempt.data)
        except Exception:
            return None
        return retry.retry_delay(task, error, attempt.retry_index + 1, task_id=attempt.task_id)

    # -- processes ----------------------------------------------------------------------

    def _spawn(self) -> WorkerProcess:
        capture_dir = tempfile.mkdtemp(prefix="worker-", dir=self._tmp)
        command = [
            sys.executable,
            "-u",
            "-m",
            "zenaton_runtime.pool.worker",
            *self._args,
            *self._sources,
            "--capture-dir",
            capture_dir,
        ]
        worker = WorkerProcess.start(command, cwd=self._root, env=self._env, capture_dir=capture_dir)
        worker.generation = self._generation
        self._workers.append(worker)
        self._selector.register(worker.stdout_fd, selectors.EVENT_READ, worker)
        if worker.pidfd is not None:
            self._selector.register(worker.pidfd, selectors.EVENT_READ, worker)
        return worker

    def _remove(self, worker: WorkerProcess) -> None:
        for fd in (worker.stdout_fd, worker.pidfd):
            if fd is not None and fd in self._selector.get_map():
                self._selector.unregister(fd)
        worker.kill()
        worker.wait_exit(EXIT_WAIT)
        worker.close()
        shutil.rmtree(worker.capture_dir, ignore_errors=True)
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
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

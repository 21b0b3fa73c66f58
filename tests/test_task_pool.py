"""The task pool: running attempts inline and in warm worker processes."""

from __future__ import annotations

import itertools
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zenaton.exceptions import TaskCrashedError
from zenaton_runtime.pool.attempts import Attempt, Outcome, run_attempt
from zenaton_runtime.pool.inline import InlineRunner
from zenaton_runtime.pool.runner import Runner
from zenaton_runtime.pool.worker_pool import PoolFullError, WorkerPool, WorkerStartError
from zenaton_runtime.project.loader import Project, load_project
from zenaton_runtime.timing import retry

TASKS = """
import os
import signal
import sys
import time

from zenaton.abstracts.task import Task
from zenaton.exceptions import TaskCrashedError, TaskTimeoutError
from zenaton.traits.zenatonable import Zenatonable


class OkTask(Task, Zenatonable):
    def __init__(self, x=1):
        self.x = x

    def handle(self):
        return {"x": self.x, "pid": os.getpid()}


class ContextTask(Task, Zenatonable):
    def handle(self):
        context = self.get_context()
        return [context.id, context.retry_index]


class NoisyTask(Task, Zenatonable):
    def handle(self):
        print("py out")
        print("py err", file=sys.stderr)
        os.write(1, b"fd out\\n")
        os.write(2, b"fd err\\n")
        return "done"


class FailingTask(Task, Zenatonable):
    def handle(self):
        raise ValueError("boom")

    def on_error_retry_delay(self, error):
        n = self.get_context().retry_index
        return n * 5 if n <= 3 else False


class ExitTask(Task, Zenatonable):
    def handle(self):
        os._exit(3)


class SlowTask(Task, Zenatonable):
    def handle(self):
        while True:
            time.sleep(0.05)

    def max_processing_time(self):
        return 0.5

    def on_error_retry_delay(self, error):
        if isinstance(error, TaskTimeoutError):
            return self.get_context().retry_index * 2
        return None


class SuicideTask(Task, Zenatonable):
    def handle(self):
        print("before death")
        os.kill(os.getpid(), signal.SIGKILL)

    def on_error_retry_delay(self, error):
        return 7 if isinstance(error, TaskCrashedError) else None


class SleepTask(Task, Zenatonable):
    def __init__(self, seconds=0.1):
        self.seconds = seconds

    def handle(self):
        time.sleep(self.seconds)
        return "slept"


class ExitingTask(Task, Zenatonable):
    def handle(self):
        sys.exit(2)


class UnencodableTask(Task, Zenatonable):
    def handle(self):
        return lambda: 1


class BadHookTask(Task, Zenatonable):
    def handle(self):
        raise KeyError("k")

    def on_error_retry_delay(self, error):
        raise RuntimeError("hook broke")
"""

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pool_project")
    (root / "pool_fixture_tasks.py").write_text(textwrap.dedent(TASKS))
    (root / "boot.py").write_text("import pool_fixture_tasks  # noqa: F401\n")
    return root


@pytest.fixture(scope="module")
def project(project_root: Path) -> Project:
    return load_project(project_root)


@pytest.fixture
def pool(project: Project, project_root: Path) -> Iterator[WorkerPool]:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=2) as pool:
        yield pool


def attempt(project: Project, name: str, *args: object, retry_index: int = 0) -> Attempt:
    task = project.task(name)(*args)
    return Attempt(
        task_id=f"t{next(_ids)}",
        instance_id="i1",
        env="test",
        name=name,
        data=project.codec.encode(task, "task"),
        retry_index=retry_index,
        max_time=task.max_processing_time(),
    )


def collect(pool: WorkerPool, count: int, limit: float = 8.0) -> dict[str, Outcome]:
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + limit
    while len(outcomes) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(outcomes)} of {count} outcomes: {outcomes}"
        outcomes += pool.poll(remaining)
    return {o.task_id: o for o in outcomes}


def result(project: Project, outcome: Outcome) -> object:
    assert outcome.ok, outcome.error
    assert outcome.result is not None
    return project.codec.decode(outcome.result)


# -- pure rules -----------------------------------------------------------------------


def test_delay_seconds_accepts_only_positive_numbers() -> None:
    assert retry.delay_seconds(5) == 5.0
    assert retry.delay_seconds(0.5) == 0.5
    for value in (None, False, True, 0, -3, "5", float("nan"), float("inf"), [1]):
        assert retry.delay_seconds(value) is None


def test_retry_delay_sees_the_failure_count_and_survives_a_broken_hook(project: Project) -> None:
    failing = project.task("FailingTask")()
    error = ValueError("boom")
    assert [retry.retry_delay(failing, error, k) for k in (1, 2, 3, 4)] == [5.0, 10.0, 15.0, None]
    assert retry.retry_delay(project.task("BadHookTask")(), error, 1) is None
    assert failing.get_context().retry_index is None  # nothing left behind


# -- in process -----------------------------------------------------------------------


def test_inline_runner_results_and_context(project: Project) -> None:
    runner = InlineRunner(project)
    ok, ctx = attempt(project, "OkTask", 4), attempt(project, "ContextTask", retry_index=2)
    runner.submit(ok)
    runner.submit(ctx)
    outcomes = {o.task_id: o for o in runner.poll()}
    assert runner.poll() == []
    assert result(project, outcomes[ok.task_id]) == {"x": 4, "pid": os.getpid()}
    assert result(project, outcomes[ctx.task_id]) == [ctx.task_id, 2]
    assert outcomes[ok.task_id].error is None and outcomes[ok.task_id].retry_delay is None


def test_inline_runner_errors_and_retry_delays(project: Project) -> None:
    runner = InlineRunner(project)
    delays = []
    for retry_index in range(4):
        runner.submit(attempt(project, "FailingTask", retry_index=retry_index))
        (outcome,) = runner.poll()
        assert not outcome.ok and outcome.result is None
        delays.append(outcome.retry_delay)
    assert delays == [5.0, 10.0, 15.0, None]  # four attempts in all
    assert outcome.error is not None
    assert outcome.error["class"] == "ValueError" and outcome.error["message"] == "boom"
    assert "ValueError: boom" in outcome.error["traceback"] and "pool_fixture_tasks.py" in outcome.error["traceback"]


def test_run_attempt_classifies_exit_unencodable_result_and_broken_hook(project: Project) -> None:
    exiting = run_attempt(project, attempt(project, "ExitingTask"))
    assert exiting.error is not None and exiting.error["class"] == "SystemExit"
    unencodable = run_attempt(project, attempt(project, "UnencodableTask"))
    assert unencodable.error is not None and unencodable.error["class"] == "SerializationError"
    broken = run_attempt(project, attempt(project, "BadHookTask"))
    assert broken.error is not None and broken.error["class"] == "KeyError" and broken.retry_delay is None


def test_run_attempt_captures_python_output_and_installs_the_runtime(project: Project) -> None:
    noisy = run_attempt(project, attempt(project, "NoisyTask"))
    assert noisy.ok and noisy.stdout == "py out\n" and noisy.stderr == "py err\n"
    seen = []
    runner = InlineRunner(project, runtime_factory=lambda env: seen.append(env))
    runner.submit(attempt(project, "OkTask"))
    assert runner.poll()[0].ok and seen == ["test"]


def runs_on(runner: Runner) -> Runner:
    """What the engine does with a runner: typed with the protocol (mypy checks the callers)."""
    assert runner.busy() == 0 and runner.free_slots() > 0
    assert runner.poll(0) == []
    return runner


def test_the_pool_and_the_inline_runner_are_runners(project: Project, project_root: Path) -> None:
    inline = InlineRunner(project)
    assert isinstance(runs_on(inline), Runner)
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=1) as pool:
        assert isinstance(runs_on(pool), Runner)
        assert pool.worker_pids() == []  # asking started no process
    assert not isinstance(object(), Runner)


# -- worker processes -----------------------------------------------------------------


def test_pool_runs_tasks_captures_output_and_reuses_workers(pool: WorkerPool, project: Project) -> None:
    first, noisy = attempt(project, "OkTask", 1), attempt(project, "NoisyTask")
    pool.submit(first)
    pool.submit(noisy)
    assert pool.busy() == 2 and pool.free_slots() == 0
    assert {a.task_id for a in pool.running()} == {first.task_id, noisy.task_id}
    third = attempt(project, "OkTask")
    pool.submit(third)  # no worker free: it waits in the pool, then runs on the first one free
    assert pool.busy() == 3
    outcomes = collect(pool, 3)
    assert outcomes[third.task_id].ok
    assert result(project, outcomes[noisy.task_id]) == "done"
    assert outcomes[noisy.task_id].stdout == "py out\nfd out\n"
    assert outcomes[noisy.task_id].stderr == "py err\nfd err\n"
    pids = {result(project, outcomes[first.task_id])["pid"]}  # type: ignore[index]
    for _ in range(3):
        later = attempt(project, "OkTask", 2)
        pool.submit(later)
        pids.add(result(project, collect(pool, 1)[later.task_id])["pid"])  # type: ignore[index]
    assert pids <= set(pool.worker_pids()) and len(pool.worker_pids()) == 2
    assert pool.busy() == 0 and pool.free_slots() == 2


def test_pool_reports_task_errors_with_retry_delay(pool: WorkerPool, project: Project) -> None:
    failing = attempt(project, "FailingTask", retry_index=1)
    pool.submit(failing)
    outcome = collect(pool, 1)[failing.task_id]
    assert not outcome.ok and outcome.error is not None
    assert outcome.error["class"] == "ValueError" and outcome.error["message"] == "boom"
    assert outcome.retry_delay == 10.0


def test_pool_survives_crashing_workers(pool: WorkerPool, project: Project) -> None:
    exiting, suicide = attempt(project, "ExitTask"), attempt(project, "SuicideTask")
    pool.submit(exiting)
    pool.submit(suicide)
    outcomes = collect(pool, 2)
    exited = outcomes[exiting.task_id]
    assert exited.error is not None and exited.error["class"] == "TaskCrashedError"
    assert "exit code 3" in exited.error["message"] and exited.retry_delay is None
    killed = outcomes[suicide.task_id]
    assert killed.error is not None and killed.error["class"] == "TaskCrashedError"
    assert "SIGKILL" in killed.error["message"] and "SuicideTask" in killed.error["message"]
    assert killed.stdout == "before death\n" and killed.retry_delay == 7.0
    assert pool.worker_pids() == []

    warm = attempt(project, "OkTask")
    pool.submit(warm)
    assert collect(pool, 1)[warm.task_id].ok
    sleeper = attempt(project, "SleepTask", 30)  # killed from outside this time
    pool.submit(sleeper)
    (pid,) = pool.worker_pids()
    assert pool.poll(0.1) == []
    os.kill(pid, signal.SIGKILL)
    assert collect(pool, 1)[sleeper.task_id].error["class"] == TaskCrashedError.__name__  # type: ignore[index]

    after = attempt(project, "OkTask", 9)
    pool.submit(after)
    assert result(project, collect(pool, 1)[after.task_id])["x"] == 9  # type: ignore[index]


def test_pool_kills_attempts_past_their_deadline(pool: WorkerPool, project: Project) -> None:
    slow = attempt(project, "SlowTask", retry_index=2)
    assert slow.max_time == 0.5
    started = time.monotonic()
    pool.submit(slow)
    outcome = collect(pool, 1)[slow.task_id]
    assert 0.5 <= time.monotonic() - started < 3
    assert outcome.error is not None and outcome.error["class"] == "TaskTimeoutError"
    assert "max_processing_time of 0.5 s" in outcome.error["message"]
    assert outcome.retry_delay == 6.0  # on_error_retry_delay ran in the daemon with retry_index 3
    after = attempt(project, "OkTask")
    pool.submit(after)
    assert collect(pool, 1)[after.task_id].ok


def test_pool_poll_returns_early_on_wake_fd(pool: WorkerPool) -> None:
    read_fd, write_fd = os.pipe()
    try:
        pool.add_wake_fd(read_fd)
        os.write(write_fd, b"x")
        started = time.monotonic()
        assert pool.poll(5.0) == []
        assert time.monotonic() - started < 1
    finally:
        pool.remove_wake_fd(read_fd)
        os.close(read_fd)
        os.close(write_fd)


def test_pool_shutdown_waits_for_grace_then_kills(pool: WorkerPool, project: Project) -> None:
    for _ in range(2):  # warm both workers: attempts still waiting for a loading worker never start
        pool.submit(attempt(project, "OkTask"))
    collect(pool, 2)
    short, long = attempt(project, "SleepTask", 0.3), attempt(project, "SleepTask", 30)
    pool.submit(short)
    pool.submit(long)
    started = time.monotonic()
    finished, unfinished = pool.shutdown(1.0)
    assert time.monotonic() - started < 4
    assert [o.task_id for o in finished] == [short.task_id] and finished[0].ok
    assert unfinished == [long]
    assert pool.free_slots() == 0 and pool.worker_pids() == []
    with pytest.raises(PoolFullError):
        pool.submit(attempt(project, "OkTask"))


def test_pool_reports_a_project_that_cannot_load(project: Project, tmp_path: Path) -> None:
    (tmp_path / "boot.py").write_text("raise RuntimeError('broken project')\n")
    first = attempt(project, "OkTask")
    with WorkerPool(project, root=tmp_path, store_url="memory://", concurrency=2) as broken:
        broken.submit(first)
        with pytest.raises(WorkerStartError, match="broken project") as raised:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                broken.poll(deadline - time.monotonic())
        assert raised.value.attempts == [first]
        assert broken.free_slots() == 0
        with pytest.raises(WorkerStartError):
            broken.submit(attempt(project, "OkTask"))


def test_many_quick_tasks_on_one_worker_each_run_once(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=1) as one:
        warm = attempt(project, "OkTask", 0)
        one.submit(warm)
        collect(one, 1)
        batch = [attempt(project, "OkTask", i) for i in range(20)]
        for item in batch:
            one.submit(item)  # queued behind the running one, or waiting in the pool
        outcomes = collect(one, 20)
        assert set(outcomes) == {a.task_id for a in batch} and all(o.ok for o in outcomes.values())
        assert len(one.worker_pids()) == 1 and one.busy() == 0


def test_attempts_queued_behind_one_that_kills_its_worker_run_elsewhere(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=1) as one:
        warm = attempt(project, "OkTask", 0)
        one.submit(warm)
        collect(one, 1)
        doomed = attempt(project, "SuicideTask")
        behind = [attempt(project, "OkTask", i) for i in range(5)]
        for item in [doomed, *behind]:
            one.submit(item)
        outcomes = collect(one, 6)
        crash = outcomes[doomed.task_id].error
        assert crash is not None and crash["class"] == "TaskCrashedError"
        assert all(outcomes[a.task_id].ok for a in behind)  # never started, so never failed


def test_quick_task_classes_go_several_to_a_worker_in_one_hand_off(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=2) as two:
        two.warm_up()
        assert two.wait_ready(30)
        assert two.free_slots() == 2  # nothing known of any task class yet: one each
        first = [attempt(project, "OkTask", i) for i in range(2)]
        two.submit_many(first)
        collect(two, 2)  # OkTask is now known to take next to no time
        batch = [attempt(project, "OkTask", i) for i in range(12)]
        two.submit_many(batch)
        assert two.busy() == 12
        assert sorted(len(w.queue) for w in two._workers) == [6, 6]  # an even split, one write each
        outcomes = collect(two, 12)
        assert all(outcomes[a.task_id].ok for a in batch)


def test_a_slow_task_class_gets_no_deep_queue(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=1) as one:
        one.warm_up()
        assert one.wait_ready(30)
        one.submit(attempt(project, "SleepTask", 0.05))
        collect(one, 1)  # SleepTask is known to take 50 ms: not quick
        one.submit(attempt(project, "SleepTask", 0.3))
        assert one.free_slots() <= 3  # at most the usual pipeline behind a just-started attempt
        collect(one, 1)


def test_quick_attempts_go_to_idle_workers_before_sharing_one(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=4) as four:
        four.warm_up()
        assert four.wait_ready(30)
        four.submit_many([attempt(project, "SleepTask", 0) for _ in range(2)])
        collect(four, 2)  # SleepTask is quick now
        stalled = attempt(project, "SleepTask", 2)
        others = [attempt(project, "SleepTask", 0) for _ in range(3)]
        four.submit_many([stalled, *others])
        assert sorted(len(w.queue) for w in four._workers) == [1, 1, 1, 1]  # no one behind the stalled one
        outcomes = collect(four, 3)  # the quick ones report while the stalled one still sleeps
        assert set(outcomes) == {a.task_id for a in others}
        collect(four, 1)


def test_output_left_between_attempts_is_not_the_next_attempts(tmp_path: Path) -> None:
    from zenaton_runtime.pool.worker import Capture

    saved = os.dup(1), os.dup(2)
    try:
        capture = Capture(tmp_path / "capture")
        capture.start()
        first = capture.stop()
        os.write(1, b"late output of a child the first attempt left running\n")
        capture.start()
        second = capture.stop()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    assert first == ("", "") and second == ("", "")


def test_quick_attempts_are_not_shared_out_behind_a_slow_one(project: Project, project_root: Path) -> None:
    with WorkerPool(project, root=project_root, store_url="memory://", concurrency=2) as two:
        two.warm_up()
        assert two.wait_ready(30)
        two.submit_many([attempt(project, "OkTask", 0), attempt(project, "SleepTask", 0.05)])
        collect(two, 2)  # OkTask is quick, SleepTask is not
        slow = attempt(project, "SleepTask", 0.5)
        quick = [attempt(project, "OkTask", i) for i in range(3)]
        two.submit_many([quick[0], slow, *quick[1:]])
        behind_slow = [w for w in two._workers if w.queue and w.queue[0].task_id == slow.task_id]
        assert [len(w.queue) for w in behind_slow] == [1]
        collect(two, 4)


class _Snapshot:
    """A code snapshot whose write fails when told to (a full disk)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def write(self, path: Path) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        path.write_text("{}")


class _Project:
    def __init__(self, fail: bool = False) -> None:
        self.snapshot = _Snapshot(fail)


def test_a_snapshot_that_cannot_be_written_leaves_the_launcher_as_it_was(tmp_path: Path) -> None:
    from zenaton_runtime.pool.worker_process import Launcher

    launcher = Launcher(root=str(tmp_path), store_url="memory://", boot="boot.py", module=None, env=None)
    try:
        assert launcher.load(_Project(), 0) == []
        first = Path(launcher.tmp) / "sources-0.json"
        assert first.exists()
        with pytest.raises(OSError):
            launcher.load(_Project(fail=True), 1)
        assert first.exists()  # the workers still start on generation 0's snapshot
        previous = launcher.load(_Project(), 1)
        assert previous == ["--sources", str(first)] and first.exists()
        launcher.discard(previous)
        assert not first.exists() and (Path(launcher.tmp) / "sources-1.json").exists()
    finally:
        launcher.close()

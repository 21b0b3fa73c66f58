"""The outcomes the pool writes itself, for attempts that never reported one: those that outlived
their ``max_time`` (``TaskTimeoutError``) and those whose worker died (``TaskCrashedError``).

No processes and no clock (the caller passes the times). The task's own ``on_error_retry_delay``
runs here, in the daemon, since its worker is gone.
"""

from __future__ import annotations

from typing import Any

from zenaton.exceptions import TaskCrashedError, TaskTimeoutError
from zenaton_runtime.pool.attempts import Attempt, Outcome, classify
from zenaton_runtime.timing import retry

__all__ = ["crashed", "retry_delay", "timed_out"]


def timed_out(
    project: Any, attempt: Attempt, output: tuple[str, str], started_at: float, finished_at: float
) -> Outcome:
    """``attempt`` ran past its ``max_time`` and was killed; ``output``: its (stdout, stderr) so far."""
    error = TaskTimeoutError(
        f"task {attempt.name} ({attempt.task_id}) ran longer than its max_processing_time of {attempt.max_time:g} s"
    )
    return _failed(project, attempt, error, output, started_at, finished_at)


def crashed(
    project: Any, attempt: Attempt, how: str, output: tuple[str, str], started_at: float, finished_at: float
) -> Outcome:
    """The worker running ``attempt`` died (``how``: its exit, or why it was killed)."""
    error = TaskCrashedError(f"worker process died ({how}) while running task {attempt.name} ({attempt.task_id})")
    return _failed(project, attempt, error, output, started_at, finished_at)


def retry_delay(project: Any, attempt: Attempt, error: BaseException) -> float | None:
    """Seconds before the next attempt, as the task decides; None if its data cannot be decoded."""
    try:
        task = project.codec.decode(attempt.data)
    except Exception:
        return None
    return retry.retry_delay(task, error, attempt.retry_index + 1, task_id=attempt.task_id)


def _failed(
    project: Any,
    attempt: Attempt,
    error: BaseException,
    output: tuple[str, str],
    started_at: float,
    finished_at: float,
) -> Outcome:
    return classify(
        attempt.task_id,
        result=None,
        error=error,
        retry_delay=retry_delay(project, attempt, error),
        stdout=output[0],
        stderr=output[1],
        started_at=started_at,
        finished_at=finished_at,
    )

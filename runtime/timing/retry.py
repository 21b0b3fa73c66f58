"""Retry rules for task attempts (pure: no I/O, no clock).

A task that raises is retried when its ``on_error_retry_delay(error)`` returns
a positive number of seconds. While that method runs after the k-th failure,
``get_context().retry_index`` reads k (1 after the first failure), so the
classic ``n = retry_index; return False if n > 3 else n * 5`` gives three
retries, 5, 10 and 15 seconds apart.
"""

from __future__ import annotations

import math
from typing import Any

from zenaton.contexts.task_context import TaskContext, current_task_context

_MISSING = object()


def retry_delay(task: Any, error: BaseException, failures: int, *, task_id: str | None = None) -> float | None:
    """Seconds to wait before the next attempt after ``failures`` failures, or None for no retry.

    The user's hook may raise; then there is no retry and the caller records the original error.
    """
    previous = _context_of(task)
    context = TaskContext(id=task_id if task_id is not None else getattr(previous, "id", None), retry_index=failures)
    # A context stored on the object itself would shadow the context variable; hide it meanwhile.
    stored = _pop_stored_context(task)
    token = current_task_context.set(context)
    try:
        value = task.on_error_retry_delay(error)
    except (Exception, SystemExit):
        return None
    finally:
        current_task_context.reset(token)
        _restore_stored_context(task, stored)
    return delay_seconds(value)


def delay_seconds(value: Any) -> float | None:
    """A hook's return value as seconds: a positive finite int or float, else None (no retry)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


def _context_of(task: Any) -> TaskContext | None:
    return getattr(task, "_context", None) or current_task_context.get()


def _pop_stored_context(task: Any) -> Any:
    attributes = getattr(task, "__dict__", None)
    if attributes is None:
        return _MISSING
    return attributes.pop("_context", _MISSING)


def _restore_stored_context(task: Any, stored: Any) -> None:
    if stored is not _MISSING:
        task.__dict__["_context"] = stored

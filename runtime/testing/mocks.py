"""Task classes replaced in a test: their attempts run a stand-in instead of ``handle()``.

The stand-in runs where ``handle()`` would (``pool.attempts.run_attempt``, given as its
``handler``): in the attempt's context, its output captured, and its exception classified as
the task's own, so ``on_error_retry_delay`` decides a retry as it does for the real task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zenaton.abstracts.task import Task

_UNSET: Any = object()


class TaskMock:
    """A mocked task class: what to do at each attempt, and the tasks its attempts were given
    (``calls``, in order; one per attempt, retries included)."""

    def __init__(self, task_class: type[Task], action: Callable[[Task], Any], description: str) -> None:
        self.task_class = task_class
        self.name = task_class.__name__
        self.calls: list[Task] = []
        self._action = action
        self._description = description

    def __call__(self, task: Task) -> Any:
        self.calls.append(task)
        return self._action(task)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def called(self) -> bool:
        return bool(self.calls)

    def __repr__(self) -> str:
        return f"<TaskMock {self.name}: {self._description}, {self.call_count} call(s)>"


def task_mock(task_class: Any, handler: Any = None, *, returns: Any = _UNSET, raises: Any = None) -> TaskMock:
    """A mock of ``task_class``: ``handler(task)`` called at each attempt, or ``returns`` a value,
    or ``raises`` an exception (an instance or a class); exactly one of them."""
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise TypeError(f"mock_task() takes a Task class, not {task_class!r}")
    given = [name for name, value in (("a handler", handler), ("raises=", raises)) if value is not None]
    if returns is not _UNSET:
        given.append("returns=")
    if len(given) != 1:
        raise TypeError(
            f"mock_task({task_class.__name__}, ...) takes exactly one of a handler, returns= and raises= "
            f"(given: {', '.join(given) or 'none'})"
        )
    if handler is not None:
        if not callable(handler):
            raise TypeError(f"mock_task({task_class.__name__}, handler): the handler must be callable")
        return TaskMock(task_class, handler, f"calls {getattr(handler, '__name__', repr(handler))}")
    if raises is not None:
        if not (isinstance(raises, BaseException) or (isinstance(raises, type) and issubclass(raises, BaseException))):
            raise TypeError(f"mock_task({task_class.__name__}, raises=...) takes an exception, not {raises!r}")
        return TaskMock(task_class, _raiser(raises), f"raises {raises!r}")
    value = returns
    return TaskMock(task_class, lambda task: value, f"returns {value!r}")


def _raiser(error: BaseException | type[BaseException]) -> Callable[[Task], Any]:
    def raise_it(task: Task) -> Any:
        raise error

    return raise_it

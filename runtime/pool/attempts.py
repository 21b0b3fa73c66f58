"""Running one task attempt: decode, run ``handle()``, capture output, classify the outcome
(with the task as ``handle()`` left it, when that changed its attributes).

``run_attempt`` runs in whatever process calls it: the worker processes of
``zenaton_runtime.pool.worker_pool`` for the daemon, or the caller's own process through
``zenaton_runtime.pool.inline.InlineRunner`` (tests, in-process helpers). Running and classifying are kept
apart: ``_execute`` runs the user's code, ``classify`` turns what happened into
an ``Outcome`` without touching anything.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from zenaton._runtime import current_runtime
from zenaton.abstracts.task import Task
from zenaton.contexts.task_context import TaskContext, current_task_context
from zenaton_runtime.errors import SerializationError
from zenaton_runtime.timing import retry

OUTPUT_LIMIT = 64 * 1024
"""At most this much of the end of an attempt's stdout and of its stderr is kept."""

ENGINE_PACKAGES = ("builtins", "zenaton", "zenaton_runtime")


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Attempt:
    """One attempt of one task, as the daemon hands it to a runner."""

    task_id: str
    instance_id: str
    env: str
    name: str  # task class name
    data: str  # the task object, encoded with project.codec
    retry_index: int  # 0 for the first attempt, n for the n-th automatic retry
    max_time: float | None  # seconds (task.max_processing_time()); None = no limit

    def to_json(self) -> str:
        """The worker protocol's line: the fields as a JSON array, in their order."""
        return COMPACT_JSON(
            [self.task_id, self.instance_id, self.env, self.name, self.data, self.retry_index, self.max_time]
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Attempt:
        return cls(*json.loads(text))


COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode  # built once: json.dumps with options builds one a call


@dataclass(slots=True)  # built on every step: plain slots, not frozen (3x cheaper)
class Outcome:
    """How an attempt ended."""

    task_id: str
    ok: bool
    result: str | None  # project.codec.encode(value, "result") when ok
    error: dict[str, str] | None  # {"class", "message", "traceback"} when not ok
    retry_delay: float | None  # seconds before the next attempt; None = no automatic retry
    stdout: str
    stderr: str
    started_at: float
    finished_at: float
    changed_task: str | None = None  # the task encoded as handle() left it, only if handle() changed it

    def to_list(self) -> list[Any]:
        """The worker protocol's form: the fields as a list, in their order."""
        return [
            self.task_id,
            self.ok,
            self.result,
            self.error,
            self.retry_delay,
            self.stdout,
            self.stderr,
            self.started_at,
            self.finished_at,
            self.changed_task,
        ]

    def with_output(self, stdout: str, stderr: str) -> Outcome:
        return Outcome(
            self.task_id,
            self.ok,
            self.result,
            self.error,
            self.retry_delay,
            stdout,
            stderr,
            self.started_at,
            self.finished_at,
            self.changed_task,
        )

    @classmethod
    def from_list(cls, fields: list[Any]) -> Outcome:
        return cls(*fields)


RuntimeFactory = Callable[[str], Any]
"""``factory(env) -> runtime or None``: the SDK runtime a task sees while it runs."""

Handler = Callable[[Task], Any]
"""``handler(task) -> result``: what runs instead of ``task.handle()`` (the testing kit's mocks)."""


def run_attempt(
    project: Any,
    attempt: Attempt,
    runtime: Any = None,
    *,
    make_runtime: RuntimeFactory | None = None,
    capture: bool = True,
    handler: Handler | None = None,
) -> Outcome:
    """Run one attempt in this process and return its outcome; never raises for the task's sake.

    ``runtime`` (or ``make_runtime(attempt.env)``, called inside the attempt so that its
    failure fails the attempt) is installed as the SDK's current runtime while the task runs.
    With ``capture`` (the default) ``sys.stdout``/``sys.stderr`` are redirected for the
    attempt; the worker process passes False and captures at the file-descriptor level.
    ``handler`` runs instead of the task's ``handle()``, in the same context (a mock: everything
    else, output, retries by ``on_error_retry_delay``, is as for the real one).
    """
    started_at = time.time()
    with _captured(capture) as (out, err):
        task, result, error, changed_task = _execute(project, attempt, runtime, make_runtime, handler)
        delay = None
        if error is not None and task is not None:
            delay = retry.retry_delay(task, error, attempt.retry_index + 1, task_id=attempt.task_id)
    return classify(
        attempt.task_id,
        result=result,
        error=error,
        retry_delay=delay,
        stdout=out.getvalue() if out else "",
        stderr=err.getvalue() if err else "",
        started_at=started_at,
        finished_at=time.time(),
        changed_task=changed_task,
    )


def classify(
    task_id: str,
    *,
    result: str | None,
    error: BaseException | None,
    retry_delay: float | None,
    stdout: str,
    stderr: str,
    started_at: float,
    finished_at: float,
    changed_task: str | None = None,
) -> Outcome:
    """The outcome of an attempt that returned ``result`` or raised ``error`` (pure);
    ``changed_task`` is the task encoded after ``handle()``, given only when that changed it."""
    failed = error is not None
    return Outcome(
        task_id=task_id,
        ok=not failed,
        result=None if failed else result,
        error=describe_error(error) if error is not None else None,
        retry_delay=retry_delay if failed else None,
        stdout=stdout,
        stderr=stderr,
        started_at=started_at,
        finished_at=finished_at,
        changed_task=changed_task,
    )


def describe_error(error: BaseException) -> dict[str, str]:
    """``{"class", "message", "traceback"}`` for an error, as the journal and the CLI show it."""
    return {
        "class": error_class_name(type(error)),
        "message": str(error),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }


def error_class_name(cls: type) -> str:
    """``module.QualName`` for the user's classes; the plain name for builtins and the engine's own."""
    module = cls.__module__ or ""
    if module.partition(".")[0] in ENGINE_PACKAGES:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _execute(
    project: Any, attempt: Attempt, runtime: Any, make_runtime: RuntimeFactory | None, handler: Handler | None = None
) -> tuple[Task | None, str | None, BaseException | None, str | None]:
    """Run the attempt: (decoded task or None, encoded result, error, the task encoded after
    ``handle()`` if that changed its attributes, else None)."""
    try:
        task = _decode_task(project, attempt)
    except (Exception, SystemExit) as error:
        return None, None, error, None
    task_token = current_task_context.set(TaskContext(id=attempt.task_id, retry_index=attempt.retry_index))
    runtime_token = None
    try:
        if runtime is None and make_runtime is not None:
            runtime = make_runtime(attempt.env)
        if runtime is not None:
            runtime_token = current_runtime.set(runtime)
        value = task.handle() if handler is None else handler(task)
        return task, project.codec.encode(value, "result"), None, _changed_task(project, attempt, task)
    except (Exception, SystemExit) as error:  # SystemExit too: sys.exit() in a task fails the attempt
        return task, None, error, _changed_task(project, attempt, task)
    finally:
        if runtime_token is not None:
            current_runtime.reset(runtime_token)
        current_task_context.reset(task_token)


def _encoded_task(project: Any, task: Task) -> str | None:
    """The task encoded as the attempt's data is; None if its attributes cannot be stored."""
    try:
        text: str = project.codec.encode(task, "task")
    except Exception:  # handle() may keep anything in an attribute: that fails nothing
        return None
    return text


def _changed_task(project: Any, attempt: Attempt, task: Task) -> str | None:
    """The task encoded as ``handle()`` left it, if that differs from the task as ``handle()``
    found it; else None. Most tasks leave their attributes alone and encode back to the
    attempt's data: then nothing else is encoded. Otherwise the attempt's data is decoded again
    (the task as ``handle()`` found it, which the codec rebuilds the same way each time) and
    encoded, to tell a change from an encoding that merely differs from the stored text."""
    after = _encoded_task(project, task)
    if after is None or after == attempt.data:
        return None
    try:
        before = _encoded_task(project, _decode_task(project, attempt))
    except Exception:  # decoded once already; as an encoding that cannot be compared
        before = None
    return None if after == before else after


def _decode_task(project: Any, attempt: Attempt) -> Task:
    task = project.codec.decode(attempt.data)
    if not isinstance(task, Task):
        raise SerializationError(
            f"the data of task {attempt.name} ({attempt.task_id}) is not a Task: {type(task).__name__}"
        )
    # The attempt's context comes from the context variable; a stored one would shadow it.
    attributes = getattr(task, "__dict__", None)
    if attributes is not None:
        attributes.pop("_context", None)
    return task


class TailBuffer(io.TextIOBase):
    """A text stream that keeps only the last ``limit`` characters written to it."""

    encoding = "utf-8"

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        super().__init__()
        self._limit = limit
        self._text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._text += text
        if len(self._text) > 2 * self._limit:  # trim in batches, not on every write
            self._text = self._text[-self._limit :]
        return len(text)

    def getvalue(self) -> str:
        return self._text[-self._limit :]


@contextlib.contextmanager
def _captured(capture: bool) -> Iterator[tuple[TailBuffer | None, TailBuffer | None]]:
    if not capture:
        yield None, None
        return
    out, err = TailBuffer(), TailBuffer()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err

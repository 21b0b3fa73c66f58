"""Turning a job object into the records of a new instance; which instance ``where_id()``
names, and what a control request needs of it (the same rules for a client and a workflow)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from typing import Any

from zenaton._jobs import check_custom_id
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.exceptions import UnknownInstanceError
from zenaton.workflows.version import Version
from zenaton_runtime.models import UNFINISHED, Entry, Instance, InstanceStatus, Kind, TaskRecord, TaskStatus
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.store import NewEntry


def new_id() -> str:
    """32 random hex digits (128 bits, as a uuid4 without its version bits)."""
    return os.urandom(16).hex()


def new_task_id() -> str:
    """32 hex digits: the time in microseconds, then 76 random bits. Task ids in creation order
    keep the task table's id index growing at one end: a commit touches one page of it. The bits
    come from a generator seeded by the OS (one system call per process, not per task), which
    forked processes seed again."""
    return f"{time.time_ns() // 1000:013x}{_task_bits(76):019x}"


def _reseed() -> None:
    _task_random.seed(os.urandom(32))


_task_random = random.Random(os.urandom(32))
_task_bits = _task_random.getrandbits  # in C: one call is atomic, whatever the threads
os.register_at_fork(after_in_child=_reseed)


def new_instance(
    codec: Codec,
    job: Any,
    *,
    env: str,
    now: float,
    parent_id: str | None = None,
    parent_position: int | None = None,
    custom_id: str | None = None,
) -> tuple[Instance, NewEntry, TaskRecord | None]:
    """The instance, its ``started`` entry and (for a standalone task) its task record.

    Raises SerializationError (with the attribute path) for a job holding a value
    that cannot be stored, and InvalidArgumentError for a bad custom id.
    """
    instance_id = new_id()
    name, version = type(job).__name__, None
    if isinstance(job, Version):
        job = job.current_implementation()
        version = type(job).__name__
    if isinstance(job, Workflow):
        kind, custom_id = Kind.WORKFLOW, check_custom_id(job.id() if custom_id is None else custom_id)
    elif isinstance(job, Task):
        kind, custom_id = Kind.TASK, None
    else:  # check_jobs ran before; this is a programming error
        raise TypeError(f"not a job: {job!r}")
    data = codec.encode(job, type(job).__name__)
    instance = Instance(
        id=instance_id,
        kind=kind,
        name=name,
        version=version,
        custom_id=custom_id,
        env=env,
        status=InstanceStatus.RUNNING,
        data=data,
        properties=None,
        error=None,
        parent_id=parent_id,
        parent_position=parent_position,
        created_at=now,
        updated_at=now,
    )
    started = NewEntry(instance_id, Entry.STARTED, name=version or name, data=data)
    task = None
    if kind is Kind.TASK:
        task = TaskRecord(
            id=new_task_id(),
            instance_id=instance_id,
            position=0,
            name=name,
            data=data,
            status=TaskStatus.QUEUED,
            retry_index=0,
            attempts=0,
            run_at=now,
            created_at=now,
        )
    return instance, started, task


def named_by_custom_id(matches: Iterable[Instance], *, unfinished_only: bool = False) -> Instance | None:
    """Of one workflow's instances with one custom id (newest first), the one ``where_id()``
    names: the newest unfinished one, else (unless ``unfinished_only``) the newest."""
    matches = list(matches)
    unfinished = [m for m in matches if m.status in UNFINISHED]
    found = unfinished if unfinished_only else unfinished or matches
    return found[0] if found else None


def no_instance(name: str, custom_id: Any, env: str) -> UnknownInstanceError:
    """What an event, pause, resume or kill gets when no unfinished instance has the id."""
    return UnknownInstanceError(f"no running or paused {name} instance with id {custom_id!r} in env {env!r}")


def status_refusal(action: str, instance: Instance, allowed: Iterable[InstanceStatus]) -> str | None:
    """Why ``action`` is refused to the instance in its status, or None if it is allowed."""
    if instance.status in allowed:
        return None
    return f"cannot {action} {instance.name} {instance.id}: it is {instance.status.value}"

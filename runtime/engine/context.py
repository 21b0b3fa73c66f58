"""What an activation sees of its engine step: a few store reads, the run cache, the log,
the custom ids claimed this step, the instances it created and what its activations left. Never
the engine itself."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from zenaton_runtime.models import Instance, InstanceStatus
from zenaton_runtime.project.serializer import Codec
from zenaton_runtime.replay import WorkflowRun
from zenaton_runtime.store import StoreReads

CustomId = tuple[str, str, str]  # (env, workflow name, custom id)


class RunCache:
    """Suspended workflow runs by instance id, least recently used evicted first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self._runs: OrderedDict[str, WorkflowRun] = OrderedDict()

    def get(self, instance_id: str) -> WorkflowRun | None:
        run = self._runs.get(instance_id)
        if run is not None:
            self._runs.move_to_end(instance_id)
        return run

    def put(self, instance_id: str, run: WorkflowRun) -> None:
        self._runs[instance_id] = run
        self._runs.move_to_end(instance_id)
        while len(self._runs) > self.capacity:
            _, evicted = self._runs.popitem(last=False)
            evicted.close()

    def evict(self, instance_id: str) -> None:
        run = self._runs.pop(instance_id, None)
        if run is not None:
            run.close()

    def clear(self) -> None:
        """Close every suspended run (code reload): each is rebuilt by replay when next needed."""
        runs, self._runs = list(self._runs.values()), OrderedDict()
        for run in runs:
            try:
                run.close()
            except Exception:  # user code in a finally block: the run is gone either way
                pass

    def __len__(self) -> int:
        return len(self._runs)


def _no_commit_in_flight() -> bool:
    return False


def _keep_task(task_id: str) -> None:
    pass


NO_CUSTOM_IDS: frozenset[CustomId] = frozenset()


@dataclass(slots=True)
class StepContext:
    """One engine step, as its activations see it. ``log`` lines are written once the step is
    committed; ``see_commit_in_flight`` lets reads show the commit still in flight (False:
    there was none); ``forget_task`` says an attempt still running reports to no one once this
    step's commit lands (its task was cancelled by a rewind). ``created`` and ``decided`` are
    what the store does not hold yet: the instances this step's decisions created, and the
    statuses its finished activations left; a workflow's call to another instance reads them
    over the store (``engine/calls.py``). ``timezone`` is the project's, for the schedules a
    workflow adds."""

    reads: StoreReads
    codec: Codec
    cache: RunCache
    log: Callable[[str], None]
    now: float
    decision_timeout: float | None = None
    claimed_ids: set[CustomId] = field(default_factory=set)  # taken by children decided this step
    in_flight_ids: AbstractSet[CustomId] = NO_CUSTOM_IDS  # taken by the commit in flight
    see_commit_in_flight: Callable[[], bool] = _no_commit_in_flight
    forget_task: Callable[[str], None] = _keep_task
    timezone: str = "UTC"
    created: list[Instance] = field(default_factory=list)  # by this step's decisions, in order
    decided: dict[str, tuple[InstanceStatus, str | None]] = field(default_factory=dict)  # id -> status, properties

    def custom_id_claimed(self, key: CustomId) -> bool:
        """A child decided this step, or in the commit in flight, took this custom id."""
        return key in self.claimed_ids or key in self.in_flight_ids

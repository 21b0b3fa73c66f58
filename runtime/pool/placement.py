"""Placement: which worker takes which attempt, and the tuning constants of that policy.

Pure: no processes, no pipes, no clock (the caller passes ``now``). A worker is seen as a
``Lane``: its queue of attempts (the head runs, the rest wait in its pipe), whether it has
loaded the project, which generation of the code it runs, when its head started and how many
bytes wait in its pipe. ``WorkerProcess`` is a ``Lane``; tests build plain ones.

The rules, in the order ``place`` applies them to each attempt of a hand-off:

1. an idle lane (the pool starts the ones ``spawns`` asks for before placing);
2. for a task class that is quick (``TaskSpeeds``), the least loaded of the lanes this hand-off
   found idle and gave only quick attempts, up to ``QUICK_DEPTH`` each (an even split);
3. behind an attempt that started less than ``PIPELINE_YOUNG`` ago, on the current code: up to
   ``QUICK_DEPTH`` while the lane holds only quick attempts, else ``PIPELINE_DEPTH``; an attempt
   of a slow class closes that lane to more than ``PIPELINE_DEPTH`` for the rest of the hand-off;
4. else it waits in the pool (``place`` returns it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zenaton_runtime.pool.attempts import Attempt

__all__ = [
    "PIPELINE_BYTES",
    "PIPELINE_DEPTH",
    "PIPELINE_YOUNG",
    "QUICK_DEPTH",
    "QUICK_TASK",
    "SPIN",
    "Lane",
    "TaskSpeeds",
    "depth",
    "free_slots",
    "is_young",
    "place",
    "spawns",
    "spin",
]

PIPELINE_DEPTH = 4  # attempts a busy worker may have queued (the running one included)
QUICK_DEPTH = 16  # the same when all of them are of quick task classes (see QUICK_TASK)
PIPELINE_YOUNG = 0.05  # seconds: only queue behind an attempt that started this recently (a quick one)
PIPELINE_BYTES = 32 * 1024  # attempts waiting in a worker's pipe: well under the pipe's buffer
QUICK_TASK = 0.002  # seconds: a task class whose attempts recently took less is "quick"
SPIN = 0.0005  # seconds poll looks (without sleeping) for the result of running quick attempts
SMOOTHING = 0.2  # weight of the latest attempt in a task class's moving average duration


@dataclass(slots=True, eq=False)  # eq=False: lanes are told apart by identity (dict keys, ``in``)
class Lane:
    """A worker as placement sees it. The head of ``queue`` runs (or is about to); the others wait.

    ``waiting_bytes`` counts the attempts written to the worker behind its head, ``unsent_bytes``
    those assigned but not written yet: together, what its pipe will hold.
    """

    queue: deque[Attempt] = field(default_factory=deque)
    ready: bool = False  # the project is loaded
    generation: int = 0  # which version of the project's code it loaded
    started_at: float | None = None  # wall clock (time.time()) when its head started; None until then
    waiting_bytes: int = 0
    unsent_bytes: int = 0

    def can_queue(self, attempt: Attempt, most: int) -> bool:
        """Room for ``attempt`` behind the head (at most ``most`` in all), without risking a
        blocking write."""
        if not self.ready or len(self.queue) >= most:
            return False
        return self.waiting_bytes + self.unsent_bytes + len(attempt.data) < PIPELINE_BYTES

    def assign(self, attempt: Attempt) -> None:
        """Queue ``attempt`` (the worker's owner writes it to the process)."""
        self.queue.append(attempt)
        if self.queue[0] is not attempt:  # the head's size never counts: it is the one running
            self.unsent_bytes += len(attempt.data)


class TaskSpeeds:
    """How long attempts of each task class recently took: which classes are quick."""

    __slots__ = ("durations",)

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}  # task class name -> moving average (seconds)

    def note(self, name: str, seconds: float) -> None:
        """An attempt of ``name`` took ``seconds``."""
        before = self.durations.get(name)
        self.durations[name] = seconds if before is None else (1 - SMOOTHING) * before + SMOOTHING * seconds

    def is_quick(self, name: str) -> bool:
        """Attempts of this class have recently taken next to no time (unknown classes are not quick)."""
        return self.durations.get(name, QUICK_TASK) < QUICK_TASK

    def all_quick(self, attempts: Iterable[Attempt]) -> bool:
        """Every one of ``attempts`` is of a quick class (judged now: a class turns slow as soon as
        one of its attempts reports so)."""
        get = self.durations.get
        return all(get(attempt.name, QUICK_TASK) < QUICK_TASK for attempt in attempts)


def is_young(lane: Lane, generation: int, now: float) -> bool:
    """Busy with an attempt that started just now, on the current code: worth queueing behind."""
    started = lane.started_at
    return lane.generation == generation and lane.ready and started is not None and now - started < PIPELINE_YOUNG


def depth(lane: Lane, speeds: TaskSpeeds) -> int:
    """How many attempts may wait in ``lane``: more while all of them are of quick classes."""
    return QUICK_DEPTH if speeds.all_quick(lane.queue) else PIPELINE_DEPTH


def free_slots(
    lanes: Sequence[Lane], *, concurrency: int, waiting: int, generation: int, now: float, speeds: TaskSpeeds
) -> int:
    """How many attempts can start now or queue behind a young one: idle lanes and lanes not
    started yet, plus the room behind young ones, less the ``waiting`` attempts not placed."""
    free = concurrency - len(lanes)
    for lane in lanes:
        queued = len(lane.queue)
        if not queued:
            free += 1
        elif is_young(lane, generation, now):
            free += max(0, depth(lane, speeds) - queued)
    return max(0, free - waiting)


def spawns(lanes: Sequence[Lane], *, concurrency: int, count: int) -> int:
    """How many new lanes a hand-off of ``count`` attempts needs: one for each attempt that finds
    no idle lane, while fewer than ``concurrency`` exist."""
    room = concurrency - len(lanes)
    if room <= 0:  # the usual case (warm pool): no need to count
        return 0
    return max(0, min(room, count - sum(1 for lane in lanes if not lane.queue)))


def spin(lanes: Sequence[Lane], speeds: TaskSpeeds) -> float:
    """How long to look for results without sleeping: ``SPIN`` while some attempts are running,
    all of quick classes (a result due any moment spares the wake-up of a sleeping loop); else 0."""
    heads = [lane.queue[0] for lane in lanes if lane.queue]
    return SPIN if heads and speeds.all_quick(heads) else 0.0


def _queued(lane: Lane) -> int:
    return len(lane.queue)


def place(
    attempts: Iterable[Attempt], lanes: Sequence[Lane], *, generation: int, now: float, speeds: TaskSpeeds
) -> list[Attempt]:
    """Assign each attempt to a lane (``Lane.assign``) by the rules of this module; returns the
    attempts that found none, in order. One call is one hand-off: what it learns of the lanes
    (those it found idle, those behind which it may queue) holds for all of its attempts."""
    left: list[Attempt] = []
    shares: dict[Lane, bool] = {}  # lanes found idle -> whether given only quick attempts
    behind: dict[Lane, int] | None = None  # young lanes -> how deep their queue may grow
    durations = speeds.durations
    count, first_idle = len(lanes), 0
    for attempt in attempts:
        quick = durations.get(attempt.name, QUICK_TASK) < QUICK_TASK  # TaskSpeeds.is_quick, inlined: hot path
        lane: Lane | None = None
        while first_idle < count:  # lanes only fill up during a hand-off: the first idle one only moves on
            if not lanes[first_idle].queue:
                lane = lanes[first_idle]
                break
            first_idle += 1
        if lane is not None:
            shares[lane] = quick
        elif quick:
            fresh = [
                s for s, only_quick in reversed(shares.items()) if only_quick and s.can_queue(attempt, QUICK_DEPTH)
            ]
            lane = min(fresh, key=_queued, default=None)
        if lane is None:
            if behind is None:
                behind = {b: depth(b, speeds) for b in lanes if is_young(b, generation, now)}
            most = QUICK_DEPTH if quick else PIPELINE_DEPTH
            lane = min((b for b, d in behind.items() if b.can_queue(attempt, min(most, d))), key=_queued, default=None)
            if lane is not None and not quick:
                behind[lane] = PIPELINE_DEPTH
        if lane is None:
            left.append(attempt)
        else:
            lane.assign(attempt)
    return left

"""The placement policy, on plain data: lanes (workers as placement sees them), no processes."""

from __future__ import annotations

import itertools

from zenaton_runtime.pool import placement
from zenaton_runtime.pool.attempts import Attempt
from zenaton_runtime.pool.placement import (
    PIPELINE_BYTES,
    PIPELINE_DEPTH,
    PIPELINE_YOUNG,
    QUICK_DEPTH,
    QUICK_TASK,
    SPIN,
    Lane,
    TaskSpeeds,
)

NOW = 1_000_000.0  # the wall clock the tests pretend it is
YOUNG = NOW - PIPELINE_YOUNG / 10  # a head that started just now
OLD = NOW - 1.0  # a head that has been running a while

_ids = itertools.count(1)


def attempt(name: str, size: int = 10) -> Attempt:
    return Attempt(f"t{next(_ids)}", "i1", "dev", name, "x" * size, 0, None)


def lane(*names: str, started: float | None = YOUNG, ready: bool = True, generation: int = 0) -> Lane:
    """A worker whose queue holds attempts of ``names`` (its head started at ``started``)."""
    built = Lane(ready=ready, generation=generation, started_at=started if names else None)
    for name in names:
        built.assign(attempt(name))
    return built


def speeds(quick: tuple[str, ...] = ("Quick",), slow: tuple[str, ...] = ("Slow",)) -> TaskSpeeds:
    known = TaskSpeeds()
    for name in quick:
        known.note(name, QUICK_TASK / 10)
    for name in slow:
        known.note(name, 0.5)
    return known


def place(attempts: list[Attempt], lanes: list[Lane], known: TaskSpeeds | None = None) -> list[Attempt]:
    return placement.place(attempts, lanes, generation=0, now=NOW, speeds=known or speeds())


def lengths(lanes: list[Lane]) -> list[int]:
    return [len(each.queue) for each in lanes]


def free(lanes: list[Lane], concurrency: int, waiting: int = 0, known: TaskSpeeds | None = None) -> int:
    return placement.free_slots(
        lanes, concurrency=concurrency, waiting=waiting, generation=0, now=NOW, speeds=known or speeds()
    )


# -- task speeds ----------------------------------------------------------------------


def test_a_task_class_is_quick_once_its_attempts_took_next_to_no_time() -> None:
    known = TaskSpeeds()
    assert not known.is_quick("Unknown")  # nothing known yet: not quick
    known.note("Fast", QUICK_TASK / 2)
    known.note("Edge", QUICK_TASK)
    assert known.is_quick("Fast") and not known.is_quick("Edge")


def test_a_quick_class_turns_slow_after_slow_attempts_and_back() -> None:
    known = TaskSpeeds()
    known.note("T", 0.0)
    known.note("T", 0.05)  # a moving average: one slow attempt weighs a fifth
    assert known.durations["T"] == 0.2 * 0.05 and not known.is_quick("T")
    for _ in range(30):
        known.note("T", 0.0)
    assert known.is_quick("T")


def test_depth_is_deep_only_while_every_queued_attempt_is_quick() -> None:
    known = speeds()
    assert placement.depth(lane("Quick", "Quick"), known) == QUICK_DEPTH
    assert placement.depth(lane("Quick", "Slow"), known) == PIPELINE_DEPTH
    assert placement.depth(lane("Quick", "Unknown"), known) == PIPELINE_DEPTH


def test_spin_only_while_every_running_attempt_is_quick() -> None:
    known = speeds()
    assert placement.spin([], known) == 0.0
    assert placement.spin([lane(), lane()], known) == 0.0  # nothing running
    assert placement.spin([lane("Quick", "Slow"), lane()], known) == SPIN  # only the heads count
    assert placement.spin([lane("Quick"), lane("Slow")], known) == 0.0


# -- young lanes ----------------------------------------------------------------------


def test_only_a_just_started_head_on_the_current_code_is_young() -> None:
    assert placement.is_young(lane("Quick"), 0, NOW)
    assert not placement.is_young(lane("Quick", started=OLD), 0, NOW)
    assert not placement.is_young(lane("Quick", started=NOW - PIPELINE_YOUNG), 0, NOW)
    assert not placement.is_young(lane("Quick", started=None), 0, NOW)  # not written to the worker yet
    assert not placement.is_young(lane("Quick", ready=False), 0, NOW)
    assert not placement.is_young(lane("Quick", generation=0), 1, NOW)  # code reloaded since


# -- free slots -----------------------------------------------------------------------


def test_free_slots_count_idle_and_unstarted_workers_and_room_behind_young_ones() -> None:
    assert free([], concurrency=3) == 3
    assert free([lane(), lane("Slow", started=OLD)], concurrency=3) == 2  # one idle, one not started
    assert free([lane("Quick")], concurrency=1) == QUICK_DEPTH - 1
    assert free([lane("Quick", "Quick", "Quick")], concurrency=1) == QUICK_DEPTH - 3
    assert free([lane("Slow")], concurrency=1) == PIPELINE_DEPTH - 1
    assert free([lane("Quick", started=OLD)], concurrency=1) == 0  # stalled: nothing behind it


def test_free_slots_less_the_attempts_waiting_never_below_zero() -> None:
    assert free([lane()], concurrency=2, waiting=1) == 1
    assert free([lane()], concurrency=2, waiting=5) == 0
    full = lane(*["Quick"] * (QUICK_DEPTH + 2))  # deeper than allowed (a class turned slow...)
    assert free([full], concurrency=1) == 0


def test_spawns_are_asked_only_for_attempts_that_find_no_idle_lane() -> None:
    assert placement.spawns([], concurrency=4, count=2) == 2
    assert placement.spawns([], concurrency=4, count=9) == 4
    assert placement.spawns([lane(), lane("Slow")], concurrency=4, count=1) == 0
    assert placement.spawns([lane(), lane("Slow")], concurrency=4, count=5) == 2
    assert placement.spawns([lane("Slow")] * 4, concurrency=4, count=5) == 0


# -- placement ------------------------------------------------------------------------


def test_idle_lanes_first_in_order() -> None:
    busy, idle_a, idle_b = lane("Quick"), lane(), lane()
    first, second = attempt("Quick"), attempt("Slow")
    assert place([first, second], [busy, idle_a, idle_b]) == []
    assert list(idle_a.queue) == [first] and list(idle_b.queue) == [second]
    assert lengths([busy]) == [1]


def test_quick_attempts_of_one_hand_off_are_split_evenly_over_the_idle_lanes() -> None:
    lanes = [lane(), lane()]
    assert place([attempt("Quick") for _ in range(12)], lanes) == []
    assert lengths(lanes) == [6, 6]


def test_quick_attempts_queue_up_to_the_quick_depth_on_one_lane() -> None:
    only = lane("Quick")
    batch = [attempt("Quick") for _ in range(QUICK_DEPTH + 3)]
    left = place(batch, [only])
    assert len(only.queue) == QUICK_DEPTH
    assert left == batch[QUICK_DEPTH - 1 :]  # the rest wait, in order


def test_other_attempts_queue_at_most_the_pipeline_depth_behind_a_young_one() -> None:
    only = lane("Quick")
    batch = [attempt("Unknown") for _ in range(PIPELINE_DEPTH + 2)]
    left = place(batch, [only])
    assert len(only.queue) == PIPELINE_DEPTH and len(left) == 3


def test_a_slow_attempt_closes_a_lane_to_the_quick_depth_for_the_hand_off() -> None:
    only = lane("Quick")
    left = place([attempt("Slow"), *[attempt("Quick") for _ in range(5)]], [only])
    assert len(only.queue) == PIPELINE_DEPTH and len(left) == 6 - (PIPELINE_DEPTH - 1)


def test_nothing_queues_behind_an_old_a_stale_or_a_loading_head() -> None:
    for blocked in (lane("Quick", started=OLD), lane("Quick", generation=1), lane("Quick", ready=False)):
        batch = [attempt("Quick"), attempt("Slow")]
        assert place(batch, [blocked]) == batch
        assert len(blocked.queue) == 1


def test_quick_attempts_are_not_shared_out_behind_a_slow_one() -> None:
    lanes = [lane(), lane()]
    quick = [attempt("Quick") for _ in range(3)]
    slow = attempt("Slow")
    assert place([quick[0], slow, *quick[1:]], lanes) == []
    assert list(lanes[1].queue) == [slow]  # its share was slow: no quick one behind it
    assert lengths(lanes) == [3, 1]


def test_quick_attempts_go_to_idle_lanes_before_sharing_one() -> None:
    lanes = [lane() for _ in range(4)]
    assert place([attempt("Quick") for _ in range(4)], lanes) == []
    assert lengths(lanes) == [1, 1, 1, 1]


def test_the_least_loaded_young_lane_takes_the_next_attempt() -> None:
    lanes = [lane("Quick", "Quick", "Quick"), lane("Quick")]
    assert place([attempt("Quick"), attempt("Quick")], lanes) == []
    assert lengths(lanes) == [3, 3]


def test_a_lane_takes_no_more_than_its_pipe_holds() -> None:
    only, size = lane("Quick"), PIPELINE_BYTES // 3 + 1  # two fit behind the head, not three
    big = [attempt("Quick", size=size) for _ in range(4)]
    left = place(big, [only])
    assert len(only.queue) == 1 + 2 and left == big[2:]
    assert only.unsent_bytes == 2 * size


def test_the_head_of_a_lane_never_counts_as_bytes_waiting() -> None:
    fresh = Lane(ready=True)
    fresh.assign(attempt("Quick", size=500))
    fresh.assign(attempt("Quick", size=70))
    assert fresh.unsent_bytes == 70
    assert not Lane(ready=False).can_queue(attempt("Quick"), QUICK_DEPTH)


def test_a_hand_off_with_no_lane_leaves_every_attempt_waiting_in_order() -> None:
    batch = [attempt("Quick"), attempt("Slow")]
    assert place(batch, []) == batch
    assert place([], [lane()]) == []

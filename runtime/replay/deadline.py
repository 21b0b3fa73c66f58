"""A time limit on workflow code: a decision that runs too long is stopped, not the daemon.

Workflow code runs in the daemon's main thread, so a SIGALRM timer can interrupt even a
tight ``while True`` loop: the handler raises DecisionTimeout (a BaseException, so user
``except Exception`` blocks do not swallow it) wherever the code is.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from zenaton_runtime.errors import EngineInterrupt


class DecisionTimeout(EngineInterrupt):
    """Workflow code ran longer than the decision time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the workflow's code ran for more than {seconds:g} s in one decision (an endless loop?); "
            "the instance was paused instead of freezing the daemon"
        )
        self.seconds = seconds


try:  # the C function behind signal.getsignal, without its conversion to an enum (on every decision)
    from _signal import getsignal as _handler  # type: ignore[import-not-found]
except ImportError:  # another Python implementation
    _handler = signal.getsignal

_armed: list[float] = []  # the limit of the decision running now, if any
_MAIN_THREAD = threading.main_thread().ident


def _on_alarm(signum: int, frame: object) -> None:
    if _armed:
        raise DecisionTimeout(_armed[-1])


def arm(seconds: float | None) -> bool:
    """Raise DecisionTimeout after ``seconds`` unless ``disarm()`` comes first; False (and no
    limit) for None or outside the main thread. Cheaper than ``time_limit`` on the hot path."""
    if not seconds or threading.get_ident() != _MAIN_THREAD:
        return False
    if _handler(signal.SIGALRM) is not _on_alarm:  # installed once; again if workflow code replaced it
        signal.signal(signal.SIGALRM, _on_alarm)
    _armed.append(seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    _armed.pop()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise DecisionTimeout in this block after ``seconds`` (main thread only; None: no limit)."""
    armed = arm(seconds)
    try:
        yield
    finally:
        if armed:
            disarm()

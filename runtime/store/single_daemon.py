"""Leases for a store one daemon has to itself (SQLite, whose daemon holds the store's file lock,
and the memory store): that daemon owns every instance, so a lease is always held, there is
nothing to claim, and starting or stopping cleanly re-queues every running task."""

from __future__ import annotations

from collections.abc import Callable

from zenaton_runtime.models import NOTHING_CLAIMED, Claimed


class SingleDaemonLeases:
    recover: Callable[[], int]

    def take_lease(self, daemon_id: str, ttl: float) -> int:
        return self.recover()

    def renew_lease(self) -> bool:
        return True

    def claim_instances(self, limit: int) -> Claimed:
        return NOTHING_CLAIMED

    def release(self) -> int:
        return self.recover()

    def look_delay(self, since: object) -> float:
        return 0.0

"""``/metrics`` in the Prometheus text format, read from the store at each scrape.

Instances by name and status and the queue come from the store's rows; the engine's counters
(steps, task attempts by outcome, the commit latency histogram) from the records the daemons
write in the store at each heartbeat, one series per daemon.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from zenaton_runtime.store import Store


class StoreCollector:
    """One scrape: every family read from the store now."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        instances = GaugeMetricFamily(
            "zenaton_instances", "Instances by workflow or task name and status.", labels=["kind", "name", "status"]
        )
        for count in self.store.instance_counts(None):
            instances.add_metric([count.kind.value, count.name, count.status.value], count.instances)
        yield instances
        counts = self.store.counts()
        yield GaugeMetricFamily(
            "zenaton_tasks_queued",
            "Queued task attempts, due or not (retries wait for their delay).",
            value=counts.get("tasks_queued", 0),
        )
        yield from self._daemons()

    def _daemons(self) -> Iterator[Metric]:
        labels = ["daemon", "host", "pid"]
        up = GaugeMetricFamily("zenaton_daemon_up", "1 while the daemon's heartbeat is fresh.", labels=labels)
        workers = GaugeMetricFamily("zenaton_workers", "Task workers of the daemon.", labels=labels)
        busy = GaugeMetricFamily("zenaton_workers_busy", "Workers running an attempt.", labels=labels)
        held = GaugeMetricFamily("zenaton_instances_held", "Instances the daemon holds in memory.", labels=labels)
        steps = CounterMetricFamily(
            "zenaton_steps",
            "Instance steps committed (an instance's inputs of one engine step, decided and written).",
            labels=labels,
        )
        attempts = CounterMetricFamily(
            "zenaton_task_attempts", "Task attempts finished, by outcome.", labels=[*labels, "outcome"]
        )
        commits = HistogramMetricFamily(
            "zenaton_commit_seconds", "Time from a step's commit to its landing on disk.", labels=labels
        )
        now = time.time()
        for record in self.store.daemons():
            key = [record.id, record.host, str(record.pid)]
            stats = _stats(record.stats)
            up.add_metric(key, 1 if record.alive(now) else 0)
            workers.add_metric(key, record.workers)
            busy.add_metric(key, record.busy_workers)
            held.add_metric(key, record.instances_held)
            steps.add_metric(key, stats.get("steps", record.steps))
            for outcome, count in sorted(stats.get("task_attempts", {}).items()):
                attempts.add_metric([*key, outcome], count)
            histogram = stats.get("commit_seconds")
            if histogram:
                buckets = [(repr(float(le)), n) for le, n in zip(histogram["le"], histogram["buckets"], strict=True)]
                commits.add_metric(key, buckets=[*buckets, ("+Inf", histogram["count"])], sum_value=histogram["sum"])
        yield from (up, workers, busy, held, steps, attempts, commits)


def exposition(store: Store) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _stats(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

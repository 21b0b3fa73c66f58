"""A schedule fires once per due time when several processes fire it at once on one PostgreSQL
store: ``fire_schedule`` moves ``next_fire`` by compare-and-set under the schedule's row lock, so
of the stores racing for one due time one creates the instance and the others are told no. What
several daemons sharing a database will rely on (docs/architecture.md, the plan)."""
from __future__ import annotations

import threading

from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server  # noqa: F401  (fixtures)
from tests.test_store_contract import instance, started
from zenaton_runtime.models import Kind, Schedule
from zenaton_runtime.store.postgres import PostgresStore

RACERS = 4
FIRES = 10


def test_several_stores_firing_one_schedule_at_once_fire_each_due_time_once(pg_clean_url: str) -> None:
    stores = [PostgresStore(pg_clean_url) for _ in range(RACERS)]
    try:
        stores[0].add_schedule(
            Schedule("s", "dev", Kind.WORKFLOW, "Order", None, "{}", "* * * * *", "UTC", 60.0, None, 0, 0, None, 0.0)
        )
        for n in range(FIRES):
            due, following = 60.0 * (n + 1), 60.0 * (n + 2)
            won: list[str] = []
            barrier = threading.Barrier(RACERS)

            def fire(k: int, store: PostgresStore) -> None:
                instance_id = f"fire-{n}-{k}"
                (schedule,) = store.due_schedules(due, 10)  # each sees it due, as each daemon would
                barrier.wait()
                records = (instance(instance_id, created_at=due), started(instance_id), None)
                if store.fire_schedule(schedule.id, schedule.next_fire, following, due, records):
                    won.append(instance_id)

            threads = [threading.Thread(target=fire, args=(k, s)) for k, s in enumerate(stores)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert len(won) == 1, f"due time {due}: fired by {won}"
            assert stores[0].get_instance(won[0]) is not None
        (schedule,) = stores[0].list_schedules()
        assert schedule.fires == FIRES and schedule.next_fire == 60.0 * (FIRES + 1)
        assert len(stores[0].list_instances()) == FIRES  # no instance of a losing fire was written
    finally:
        for store in stores:
            store.close()

"""The engine of a daemon on a shared PostgreSQL store, when a step is refused because another
daemon took one of its instances over (LeaseLost): it drops that instance, keeps the others'
results for the next step, and never records a result of the lost one."""
from __future__ import annotations

import psycopg
import pytest
from flowlib.workflows import Sequential  # type: ignore[import-not-found]

from tests.harness import Harness
from tests.postgres_server import _pg_shared_database, pg_clean_url, pg_server, pg_url  # noqa: F401  (fixtures)
from zenaton_runtime.models import Entry
from zenaton_runtime.store.postgres import PostgresStore


def test_a_refused_step_drops_the_lost_instance_and_keeps_the_others(
    pg_clean_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("zenaton_runtime.store.postgres_leases.LEASES_LOOK", 0.0)
    h = Harness(pg_clean_url)
    other = PostgresStore(pg_clean_url)
    try:
        h.store.take_lease("A", 60)
        other.take_lease("B", 60)
        lost, kept = h.dispatch(Sequential(1)), h.dispatch(Sequential(2))
        h.engine.step()  # A claims both, schedules their first tasks, runs them (inline)
        assert set(h.engine.cache._runs) == {lost, kept}  # type: ignore[attr-defined]
        assert {t.instance_id for t in h.engine.in_flight.values()} == {lost, kept}
        with psycopg.connect(pg_clean_url, autocommit=True) as conn:  # A froze past its lease
            conn.execute("UPDATE zenaton.leases SET until = 0 WHERE id = 'A'")
        assert other.claim_instances(1).ids == [lost]  # B takes the first one over
        journal = h.store.journal(lost)

        h.engine.step()  # both outcomes in one step: refused whole, the lost one dropped
        assert h.engine.stats.instances_lost == 1
        assert lost not in h.engine.cache._runs  # type: ignore[attr-defined]
        assert all(t.instance_id != lost for t in h.engine.in_flight.values())
        assert h.store.journal(lost) == journal
        h.engine.run_until_idle()  # the other's result, kept, is written by the next step
        assert h.status(kept) == "completed"
        assert h.store.journal(lost) == journal  # never a result of the lost one from A
        assert [e.type for e in h.store.journal(lost)].count(Entry.TASK_COMPLETED) == 0
        assert h.engine.stats.completed == 2  # kept's two attempts; lost's attempt uncounted
    finally:
        other.close()
        h.close()

"""Retention in PostgreSQL (a mixin of PostgresStore: it uses its _read and _write): which
finished instances may go (a range of the partial index ``instances_finished``), and removing
them with everything they own in one transaction. The eligible rows are locked (``FOR UPDATE``)
while their eligibility is checked again, so a step that makes one unfinished meanwhile either
lands first (the instance stays) or waits for the prune and finds it gone.

The space comes back through autovacuum: deleted rows are reused by later inserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zenaton_runtime.models import InstanceStatus
from zenaton_runtime.store.postgres_schema import FINISHED_SQL, UNFINISHED_SQL

# The family rule: no unfinished parent, no unfinished child (instances_parent, the id index).
FAMILY = (
    f"NOT EXISTS (SELECT 1 FROM instances p WHERE p.id = instances.parent_id AND p.{UNFINISHED_SQL})"
    f" AND NOT EXISTS (SELECT 1 FROM instances c WHERE c.parent_id = instances.id AND c.{UNFINISHED_SQL})"
)
OWNED = ("journal", "journal_archive", "tasks", "timers", "inbox")  # each by instance_id, through an index


class PostgresPrune:
    _read: Callable[..., list[Any]]
    _write: Callable[..., Any]

    def prunable(self, statuses: Iterable[InstanceStatus], before: float, limit: int) -> list[str]:
        wanted = sorted({InstanceStatus(s).value for s in statuses if InstanceStatus(s).finished})
        if not wanted:
            return []
        rows = self._read(
            f"SELECT id FROM instances WHERE {FINISHED_SQL} AND status = ANY(%s) AND updated_at < %s"
            f" AND {FAMILY} ORDER BY updated_at LIMIT %s",
            (wanted, before, max(limit, 0)),
        )
        return [r[0] for r in rows]

    def prune(self, instance_ids: Iterable[str], before: float | None = None) -> int:
        ids = [i for i in dict.fromkeys(instance_ids) if "\x00" not in i]  # no stored id holds a NUL
        if not ids:
            return 0

        def run(w: Any) -> int:
            c = w.c
            since = "" if before is None else " AND updated_at < %s"
            params: tuple[Any, ...] = (ids,) if before is None else (ids, before)
            eligible = [
                r[0]
                for r in c.execute(
                    f"SELECT id FROM instances WHERE id = ANY(%s) AND {FINISHED_SQL}{since} AND {FAMILY}"
                    " ORDER BY id FOR UPDATE",
                    params,
                ).fetchall()
            ]
            if not eligible:
                return 0
            for table in OWNED:
                c.execute(f"DELETE FROM {table} WHERE instance_id = ANY(%s)", (eligible,))
            return int(c.execute("DELETE FROM instances WHERE id = ANY(%s)", (eligible,)).rowcount)

        return int(self._write(run, notify=False))  # no work for the engine: changes() stays

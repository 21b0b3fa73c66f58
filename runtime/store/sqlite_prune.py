"""Retention in SQLite (a mixin of SQLiteStore: it uses its _read and _write): which finished
instances may go (a range of the partial index ``instances_finished``), and removing them with
everything they own in one ``BEGIN IMMEDIATE`` transaction, eligibility checked again inside it.

A store whose ``auto_vacuum`` is INCREMENTAL (``zenaton vacuum`` makes it so) gives the freed
pages back to the file system in the same transaction (``PRAGMA incremental_vacuum``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zenaton_runtime.models import InstanceStatus
from zenaton_runtime.store.schema import FINISHED_SQL, UNFINISHED_SQL

# The family rule: no unfinished parent, no unfinished child (instances_parent, the id index).
FAMILY = (
    f"NOT EXISTS (SELECT 1 FROM instances p WHERE p.id = instances.parent_id AND p.{UNFINISHED_SQL})"
    f" AND NOT EXISTS (SELECT 1 FROM instances c WHERE c.parent_id = instances.id AND c.parent_id IS NOT NULL"
    f" AND c.{UNFINISHED_SQL})"
)
OWNED = ("journal", "journal_archive", "tasks", "timers", "inbox")  # each by instance_id, through an index
CHUNK = 500  # well under SQLite's limit of variables


class SQLitePrune:
    _read: Callable[..., list[Any]]
    _write: Callable[..., Any]

    def prunable(self, statuses: Iterable[InstanceStatus], before: float, limit: int) -> list[str]:
        wanted = sorted({InstanceStatus(s).value for s in statuses if InstanceStatus(s).finished})
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._read(
            f"SELECT id FROM instances WHERE {FINISHED_SQL} AND status IN ({marks}) AND updated_at < ?"
            f" AND {FAMILY} ORDER BY updated_at LIMIT ?",
            (*wanted, before, max(limit, 0)),
        )
        return [r[0] for r in rows]

    def prune(self, instance_ids: Iterable[str], before: float | None = None) -> int:
        ids = list(dict.fromkeys(instance_ids))
        if not ids:
            return 0

        def run(w: Any) -> int:
            c = w.c
            gone = 0
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                marks = ", ".join("?" * len(chunk))
                since = "" if before is None else " AND updated_at < ?"
                params = (*chunk,) if before is None else (*chunk, before)
                eligible = [
                    r[0]
                    for r in c.execute(
                        f"SELECT id FROM instances WHERE id IN ({marks}) AND {FINISHED_SQL}{since} AND {FAMILY}",
                        params,
                    )
                ]
                if not eligible:
                    continue
                marks = ", ".join("?" * len(eligible))
                for table in OWNED:
                    c.execute(f"DELETE FROM {table} WHERE instance_id IN ({marks})", eligible)
                gone += c.execute(f"DELETE FROM instances WHERE id IN ({marks})", eligible).rowcount
            if gone and c.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                # Each step of the statement frees one page, and Python's sqlite3 steps it once a call.
                for _ in range(c.execute("PRAGMA freelist_count").fetchone()[0]):
                    c.execute("PRAGMA incremental_vacuum")
            return gone

        return int(self._write(run, step=True))  # no work for the engine: changes() stays

"""Reading the rewind archive in PostgreSQL (a mixin of PostgresStore: it uses its _read).

The ``rewind`` batch op itself is ``Writer.rewind`` (postgres_writer.py): it runs inside
the batch's transaction like every other op.
"""

from __future__ import annotations

from typing import Any

from zenaton_runtime.models import ArchivedRun, JournalEntry
from zenaton_runtime.store.sqlite_rows import ENTRIES, JOURNAL_COLS


class PostgresRewind:
    _read: Any

    def archive(self, instance_id: str) -> list[ArchivedRun]:
        if "\x00" in instance_id:
            return []  # no stored id holds a NUL character
        rows = self._read(
            f"SELECT run, archived_at, {JOURNAL_COLS} FROM journal_archive WHERE instance_id = %s ORDER BY run, seq",
            (instance_id,),
        )
        runs: dict[int, tuple[float, list[JournalEntry]]] = {}
        for r in rows:
            entry = JournalEntry(r[2], r[3], ENTRIES[r[4]], *r[5:])
            runs.setdefault(r[0], (r[1], []))[1].append(entry)
        return [ArchivedRun(instance_id, run, at, tuple(entries)) for run, (at, entries) in runs.items()]

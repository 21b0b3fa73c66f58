"""Giving a SQLite store's free pages back to the file system (``zenaton vacuum``).

``VACUUM`` rewrites the whole file without its free pages; it needs the store to itself (the
command holds the daemon's lock) and about the store's size again of free disk while it runs.
It also sets ``auto_vacuum = INCREMENTAL`` first, which only a VACUUM can bring to an existing
file: from then on, each prune frees its pages at once (``PRAGMA incremental_vacuum`` in the
prune's transaction, ``sqlite_prune.py``), and the file stops growing back after a retention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zenaton_runtime.errors import StoreError
from zenaton_runtime.store.sqlite import SQLiteStore

SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class Vacuumed:
    path: Path
    before: int  # bytes, the file and its WAL
    after: int
    auto_vacuum: str  # "none", "full" or "incremental", after


def size_of(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{suffix}") for suffix in ("", "-wal") if os.path.exists(f"{path}{suffix}"))


def vacuum(path: Path) -> Vacuumed:
    """VACUUM the store at ``path``, making it incremental; the caller holds the daemon's lock."""
    if not path.is_file():
        raise StoreError(f"no store at {path}")
    before = size_of(path)
    store = SQLiteStore(path)  # a zenaton store of a version this one knows, migrated
    try:
        conn = store._conn
        store.settle()
        try:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect with the VACUUM
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = {0: "none", 1: "full", 2: "incremental"}[conn.execute("PRAGMA auto_vacuum").fetchone()[0]]
        except Exception as error:
            raise StoreError(f"cannot vacuum {path}: {error}") from None
    finally:
        store.close()
    return Vacuumed(path, before, size_of(path), mode)

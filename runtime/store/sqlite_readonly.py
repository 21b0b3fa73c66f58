"""The SQLite store opened read-only, for readers that must never write (``zenaton check``).

The connection is opened with ``mode=ro`` and ``query_only``: SQLite itself refuses any write,
so no code path above it can change the file. A missing file is an error (nothing is created),
and a store whose schema is older than this engine's is not migrated but refused.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from urllib.request import pathname2url

from zenaton_runtime.errors import StoreError
from zenaton_runtime.store.schema import LATEST, current_version
from zenaton_runtime.store.sqlite import BUSY_TIMEOUT_MS, SQLiteStore


class ReadOnlySQLiteStore(SQLiteStore):
    """A ``SQLiteStore`` whose every write fails; its reads are the same."""

    def __init__(self, path: str | os.PathLike[str], *, now: Callable[[], float] = time.time) -> None:
        absolute = os.path.abspath(os.fspath(path))
        if not os.path.isfile(absolute):
            raise StoreError(f"no store at {absolute}")
        super().__init__(absolute, now=now)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                f"file:{pathname2url(self.path)}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
                cached_statements=256,
            )
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path} read-only: {e}") from e
        return conn

    def _setup(self, durability: str) -> None:
        try:
            version = current_version(self._conn)
        except sqlite3.DatabaseError:
            version = LATEST  # not a database, or locked: the writer's checks say which
        if version is None:
            raise StoreError(f"{self.path} is not a zenaton store (it has no schema_version table)")
        if version < LATEST:
            raise StoreError(
                f"{self.path} has schema version {version}, older than this zenaton ({LATEST}); it is only read "
                "here, never upgraded: start the daemon (or run `zenaton status`) once with this zenaton first"
            )
        super()._setup(durability)

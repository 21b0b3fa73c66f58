"""Backing up a SQLite store while the daemon runs, and putting a backup back.

``backup`` reads the store through SQLite's online backup API in one read transaction: in WAL
mode the daemon's writes go on meanwhile, and the copy is the store as of one commit, never a
mixture. ``restore`` checks a backup (a SQLite file, a zenaton schema this version knows, SQLite's
integrity check) before it replaces anything, and keeps the store it replaces beside it.
Both write their result under a temporary name and rename it: never a half-written file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from zenaton_runtime.errors import StoreError
from zenaton_runtime.store.schema import LATEST, VERSION_TABLE

SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class StoreFile:
    """What a store file holds, as checked."""

    path: Path
    version: int
    instances: int
    size: int


def backup(store_path: Path, target: Path) -> StoreFile:
    """A consistent copy of the store at ``store_path`` (in use or not) written to ``target``."""
    if target.exists():
        raise StoreError(f"{target} exists; give a new file name (a backup never overwrites)")
    if not store_path.is_file():
        raise StoreError(f"no store at {store_path}")
    partial = target.with_name(f".{target.name}.partial")
    try:
        source = sqlite3.connect(store_path)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # all pages in one step: one read transaction, one snapshot
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                copy.close()
        finally:
            source.close()
        checked = check(partial)
        _fsync(partial)
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {store_path} to {target}: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return StoreFile(target, checked.version, checked.instances, target.stat().st_size)


def check(path: Path) -> StoreFile:
    """The backup's schema version and instance count, once SQLite's integrity check passed;
    StoreError naming what is wrong with it otherwise. Opened read-only: nothing is written."""
    if not path.is_file():
        raise StoreError(f"no file {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchall()
            if verdict != [("ok",)]:
                problems = "; ".join(str(row[0]) for row in verdict[:3])
                raise StoreError(f"{path} fails SQLite's integrity check: {problems}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if VERSION_TABLE not in tables or "instances" not in tables:
                raise StoreError(f"{path} is a SQLite database, but not a zenaton store")
            version = int(conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()[0])
            instances = int(conn.execute("SELECT count(*) FROM instances").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is not a readable SQLite store: {error}") from None
    if version > LATEST:
        raise StoreError(f"{path} has schema version {version}, newer than this zenaton ({LATEST}); upgrade zenaton")
    return StoreFile(path, version, instances, path.stat().st_size)


def restore(source: Path, store_path: Path) -> tuple[StoreFile, Path | None]:
    """Put the backup ``source`` in place of the store; the caller holds the daemon's lock (no
    daemon runs). Returns what was restored and where the replaced store was kept (None when
    there was none)."""
    checked = check(source)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    partial = store_path.with_name(f".{store_path.name}.restoring")
    try:
        shutil.copyfile(source, partial)
        _fsync(partial)
        os.chmod(partial, 0o600)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot copy {source} next to {store_path}: {error.strerror or error}") from None
    kept = None
    if store_path.exists():
        kept = store_path.with_name(f"{store_path.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(store_path, kept)
    for suffix in SIDE_FILES:  # the replaced store's WAL must never be applied to the backup
        side = Path(f"{store_path}{suffix}")
        if side.exists():
            if kept is not None:
                os.replace(side, Path(f"{kept}{suffix}"))
            else:
                side.unlink()
    os.replace(partial, store_path)
    return checked, kept


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

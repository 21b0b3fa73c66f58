"""backup, restore: a consistent copy of the store while the daemon runs, and putting it back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from zenaton_runtime.errors import DaemonError, StoreError
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.project.config import Config

from ..render import out, print_json
from ..state import State, common_options

SQLITE = "sqlite:///"


def store_file(config: Config, action: str) -> Path:
    if not config.store_url.startswith(SQLITE):
        raise StoreError(
            f"zenaton {action} copies SQLite stores; this project's store is {config.store_url}: "
            "use the database's own tools (pg_dump and pg_restore for PostgreSQL)"
        )
    return Path(config.store_url[len(SQLITE) :])


@click.command(short_help="Write a consistent copy of the store to FILE (the daemon may run).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def backup(state: State, file: Path, as_json: bool) -> None:
    """Write a consistent copy of the store to FILE, while the daemon runs or not.

    The copy is the store as of one commit (SQLite's online backup API), checked with SQLite's
    integrity check before it is given its name. FILE must not exist.
    """
    from zenaton_runtime.store.sqlite_backup import backup as backup_store  # only when it runs: a fast --help

    made = backup_store(store_file(state.config, "backup"), file)
    if as_json:
        print_json({"file": str(made.path), "instances": made.instances, "schema": made.version, "bytes": made.size})
    else:
        out.print(f"backed up {made.instances} instance(s) to {made.path} ({made.size} bytes)", markup=False)


@click.command(short_help="Put a backup FILE in place of the store (the daemon must be stopped).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for a confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def restore(state: State, file: Path, yes: bool, as_json: bool) -> None:
    """Put the backup FILE in place of the project's store.

    Refused while a daemon runs on the store, and for a file that is not a sound zenaton store
    (checked first: nothing is replaced then). The store it replaces is kept beside it, named
    *.before-restore-DATE.
    """
    config = state.config
    path = store_file(config, "restore")
    lock = PidLock(lock_path(config))
    try:
        lock.acquire(config.store_url)  # held throughout: no daemon can start meanwhile
    except DaemonError as error:
        raise DaemonError(f"cannot restore while the daemon runs: {error}; stop it first (zenaton stop)") from None
    try:
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("restore replaces the store: confirm with --yes")
            click.confirm(f"Replace the store {path} with {file}?", abort=True)
        from zenaton_runtime.store.sqlite_backup import restore as restore_store

        restored, kept = restore_store(file, path)
    finally:
        lock.release()
    if as_json:
        print_json({"file": str(file), "instances": restored.instances, "kept": str(kept) if kept else None})
        return
    out.print(f"restored {restored.instances} instance(s) from {file}", markup=False)
    if kept:
        out.print(f"the replaced store is kept as {kept}", markup=False)

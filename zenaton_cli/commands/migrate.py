"""migrate: move the project's SQLite store into an empty PostgreSQL database, and check the copy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from zenaton_runtime.client.inspect_views import instance_view
from zenaton_runtime.errors import ConfigError, DaemonError
from zenaton_runtime.models import ArchivedRun, Instance, JournalEntry
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.store import redacted

from ..render import out, print_json
from ..state import State, common_options
from .backup import SQLITE


def inspect_view(instance: Instance, journal: list[JournalEntry], archive: list[ArchivedRun]) -> object:
    """What the copy is checked by: `inspect --json --all-runs` of the instance."""
    return instance_view(instance, journal, archive, all_runs=True)


if TYPE_CHECKING:
    from zenaton_runtime.store.sqlite_to_postgres import Copied, Verification

POSTGRESQL = ("postgresql://", "postgres://")


@click.command(short_help="Copy the SQLite store into an empty PostgreSQL database, then check the copy.")
@click.option("--to", "url", required=True, metavar="URL", help="The PostgreSQL store: postgresql://user@host/db.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def migrate(state: State, url: str, as_json: bool) -> int:
    """Copy the project's SQLite store (instances, journals, archived runs, tasks, timers, inbox,
    schedules) into the empty PostgreSQL database at URL, then check the copy: the rows of every
    table counted, and every instance's `inspect --json --all-runs` equal on both stores.

    Refused while a daemon runs on the SQLite store (its lock is held throughout), and for a
    database whose zenaton tables hold any row. The copy is one transaction: on any failure,
    nothing is written. A copy that does not check out is removed again (exit 1). The SQLite
    store is only read. Then point [store] url (or ZENATON_STORE_URL) at URL and start.
    """
    if not url.startswith(POSTGRESQL):
        raise ConfigError(f"zenaton migrate --to needs a postgresql:// url, not {redacted(url)!r}")
    config = state.config
    if not config.store_url.startswith(SQLITE):
        raise ConfigError(
            f"zenaton migrate copies a SQLite store; this project's store is {redacted(config.store_url)}"
        )
    path = Path(config.store_url[len(SQLITE) :])
    try:
        import psycopg  # noqa: F401  (the extra's package: without it, say how to install it)
    except ImportError:
        raise ConfigError('migrating to PostgreSQL needs its extra: pip install "zenaton[postgres]"') from None
    from zenaton_runtime.store import sqlite_to_postgres as move

    lock = PidLock(lock_path(config))
    try:
        lock.acquire(config.store_url)  # held throughout: no daemon starts on the SQLite store meanwhile
    except DaemonError as error:
        raise DaemonError(f"cannot migrate while the daemon runs: {error}; stop it first (zenaton stop)") from None
    try:
        copied, checked = move.migrate(path, url, inspect_view)
    finally:
        lock.release()
    target = redacted(url)
    if as_json:
        print_json(
            {
                "from": str(path),
                "to": target,
                "rows": copied.rows,
                "copy_seconds": round(copied.seconds, 3),
                "verified": checked.ok,
                "instances_compared": checked.instances,
                "postgresql_rows": checked.postgres_rows,
                "differences": checked.differences,
                "verify_seconds": round(checked.seconds, 3),
            }
        )
    else:
        _report(path, target, copied, checked)
    return 0 if checked.ok else 1


def _report(path: Path, target: str, copied: Copied, checked: Verification) -> None:
    rows = ", ".join(f"{n} {table}" for table, n in copied.rows.items())
    out.print(f"copied {path} to {target} in {copied.seconds:.1f}s: {rows}", markup=False)
    if not checked.ok:
        for difference in checked.differences:
            click.echo(f"error: the copy differs: {difference}", err=True)
        click.echo("error: the copy did not check out and was removed; the SQLite store is unchanged", err=True)
        return
    out.print(
        f"checked: the same rows in every table, and the same view of all {checked.instances} instance(s)"
        f" ({checked.seconds:.1f}s)",
        markup=False,
    )
    out.print(
        f'done. Now point the project at it: [store] url = "{target}" in zenaton.toml'
        " (or ZENATON_STORE_URL), then zenaton start",
        markup=False,
    )

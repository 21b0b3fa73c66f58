"""prune, vacuum: removing finished instances (retention) and giving a SQLite store's space back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import click

from zenaton_runtime.client.inspect_views import instance_view
from zenaton_runtime.errors import ConfigError, DaemonError, StateError, StoreError
from zenaton_runtime.models import UNFINISHED, Instance, InstanceStatus
from zenaton_runtime.pidlock import PidLock, lock_path
from zenaton_runtime.project.config import parse_duration
from zenaton_runtime.store import Store

from ..render import out, print_json
from ..state import State, common_options

BATCH = 500  # instances a prune transaction removes at most
FINISHED = [s.value for s in InstanceStatus if s.finished]


def cutoffs(
    statuses: list[InstanceStatus] | None, older_than: float | None, retention: dict[str, float], now: float
) -> list[tuple[InstanceStatus, float]]:
    """(status, before) for each status to prune: --older-than for all, else [retention]."""
    if older_than is not None:
        chosen = statuses or [InstanceStatus(s) for s in FINISHED]
        return [(s, now - older_than) for s in chosen]
    if not retention:
        raise ConfigError(
            "zenaton prune needs a cutoff: give --older-than DURATION (like 30d) or set [retention] in zenaton.toml"
        )
    chosen = statuses or [InstanceStatus(s) for s in retention]
    missing = [s.value for s in chosen if s.value not in retention]
    if missing:
        raise ConfigError(f"no [retention] for {', '.join(missing)} in zenaton.toml: give --older-than DURATION")
    return [(s, now - retention[s.value]) for s in chosen]


def parse_statuses(text: str | None) -> list[InstanceStatus] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in FINISHED]
    if wrong or not names:
        raise click.BadParameter(f"{', '.join(wrong) or text!r}: use finished statuses ({', '.join(FINISHED)})")
    return [InstanceStatus(n) for n in dict.fromkeys(names)]


def by_id(state: State, refs: tuple[str, ...]) -> list[Instance]:
    """The instances asked by id: each finished and free to go, or a StateError (nothing removed)."""
    control = state.control()
    found = [control.resolve(ref) for ref in refs]
    for instance in found:
        if not instance.status.finished:
            raise StateError(
                f"cannot prune {instance.name} {instance.id}: it is {instance.status.value}, not finished "
                "(kill it first); nothing was pruned"
            )
    store = state.store
    for instance in found:
        parent = store.get_instance(instance.parent_id) if instance.parent_id else None
        children = store.list_instances(parent_id=instance.id)
        if (parent is not None and parent.status in UNFINISHED) or any(c.status in UNFINISHED for c in children):
            raise StateError(
                f"cannot prune {instance.name} {instance.id}: its parent or one of its children is still "
                "running or paused; nothing was pruned"
            )
    return list({i.id: i for i in found}.values())


def write_archive(store: Store, archive: IO[str], instances: list[Instance]) -> None:
    """Each instance's `inspect --json` (every run) as one line, on disk (fsync) before it goes."""
    for instance in instances:
        view = instance_view(instance, store.journal(instance.id), store.archive(instance.id), all_runs=True)
        archive.write(json.dumps(view, default=str, separators=(",", ":")) + "\n")
    archive.flush()
    os.fsync(archive.fileno())


@click.command(short_help="Remove finished instances older than a cutoff (retention).")
@click.option("--older-than", "older_than", default=None, help="Last updated longer ago than this: 90s, 12h, 30d, 2w.")
@click.option(
    "--status", "status_text", default=None, help="Only these statuses, comma-separated (completed,killed,failed)."
)
@click.option("--id", "ids", multiple=True, help="Prune this finished instance (repeatable); no cutoff needed.")
@click.option("--dry-run", is_flag=True, help="Count and list what would go; remove nothing.")
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append each removed instance's inspect --json to this file (JSON lines) first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def prune(
    state: State,
    older_than: str | None,
    status_text: str | None,
    ids: tuple[str, ...],
    dry_run: bool,
    archive: Path | None,
    as_json: bool,
) -> None:
    """Remove finished instances (completed, killed, failed) last updated before a cutoff, with
    their journals, archived runs, tasks, timers and inbox items.

    The cutoff is --older-than, or else [retention] of zenaton.toml; with neither, nothing is
    removed. Never an unfinished instance, never a finished child whose parent still runs or is
    paused, never a finished parent whose child does. The daemon may run meanwhile.
    """
    store = state.store
    statuses = parse_statuses(status_text)
    if ids:
        chosen = by_id(state, ids)
        batches: Any = [chosen] if chosen else []
        plan: list[tuple[InstanceStatus, float]] = []
    else:
        seconds = None if older_than is None else parse_duration(older_than, "--older-than")
        plan = cutoffs(statuses, seconds, state.config.retention, store.now())
        batches = None
    listed: list[Instance] = []
    pruned = 0
    sink = None if archive is None or dry_run else archive.open("a", encoding="utf-8")
    try:
        if batches is not None:
            for batch in batches:
                listed += batch
                if not dry_run:
                    if sink is not None:
                        write_archive(store, sink, batch)
                    pruned += store.prune([i.id for i in batch])
        for status, before in plan:
            while True:
                found = store.prunable([status], before, 2**62 if dry_run else BATCH)
                if not found:
                    break
                batch = list(store.get_instances(found).values())
                listed += batch
                if dry_run:
                    break
                if sink is not None:
                    write_archive(store, sink, batch)
                gone = store.prune(found, before=before)
                pruned += gone
                if gone == 0:
                    break
    finally:
        if sink is not None:
            sink.close()
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "pruned": pruned,
                "matched": len(listed),
                "archive": None if archive is None or dry_run else str(archive),
                "instances": [
                    {"id": i.id, "name": i.name, "status": i.status.value, "updated_at": i.updated_at} for i in listed
                ],
            }
        )
        return
    if dry_run:
        for i in listed:
            out.print(f"{i.id}  {i.name}  {i.status.value}", markup=False)
        out.print(f"would prune {len(listed)} finished instance(s) (dry run: nothing removed)", markup=False)
        return
    where = f"; archived to {archive}" if archive is not None and pruned else ""
    out.print(f"pruned {pruned} finished instance(s){where}", markup=False)


@click.command(short_help="Give a SQLite store's free space back (the daemon must be stopped).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def vacuum(state: State, as_json: bool) -> None:
    """Rewrite the SQLite store without its free pages (VACUUM) and print its size before and after.

    Refused while a daemon runs on the store. It also makes the store incremental: from then on
    every prune (the command's and the daemon's retention) gives its pages back at once. On
    PostgreSQL, autovacuum reuses the space of removed rows: there is nothing to run.
    """
    config = state.config
    if not config.store_url.startswith("sqlite:///"):
        raise StoreError(
            "zenaton vacuum rewrites SQLite stores; on PostgreSQL, autovacuum reuses the space of pruned "
            "rows (VACUUM FULL, with the daemons stopped, gives it back to the file system)"
        )
    path = Path(config.store_url[len("sqlite:///") :])
    lock = PidLock(lock_path(config))
    try:
        lock.acquire(config.store_url)  # held throughout: no daemon can start meanwhile
    except DaemonError as error:
        raise DaemonError(f"cannot vacuum while the daemon runs: {error}; stop it first (zenaton stop)") from None
    try:
        from zenaton_runtime.store.sqlite_vacuum import vacuum as vacuum_store  # only when it runs

        done = vacuum_store(path)
    finally:
        lock.release()
    if as_json:
        print_json(
            {"file": str(done.path), "before": done.before, "after": done.after, "auto_vacuum": done.auto_vacuum}
        )
        return
    out.print(f"vacuumed {done.path}: {done.before} bytes before, {done.after} bytes after", markup=False)

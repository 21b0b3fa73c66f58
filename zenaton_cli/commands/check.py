"""check and export: will running instances survive the code on disk? One instance's journal as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from zenaton import __version__
from zenaton_runtime.errors import ZenatonError

from ..render import check_report, out, print_json
from ..state import State, common_options


@click.command(short_help="Would unfinished instances break on the code on disk?")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path), metavar="[EXPORT]...")
@click.option(
    "--completed",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Also replay the latest N completed instances of each workflow.",
)
@click.option("--name", default=None, help="Only instances of this workflow.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def check(state: State, files: tuple[Path, ...], completed: int, name: str | None, as_json: bool) -> int:
    """Replay every unfinished workflow instance of the env against the project's code as it is
    on disk (not the daemon's), in this process: no task runs, nothing is written (the store is
    opened read-only). Lists, per workflow, those that replay cleanly and each one that would
    break, with where its journal and the code part. Exit 1 if any would break.

    With EXPORT files (written by `zenaton export`), replays those journals instead of the store's.
    """
    from zenaton_runtime.check.document import read_document  # the replay machinery: only when it runs
    from zenaton_runtime.check.report import check_documents, check_store, open_read_only

    config = state.config
    documents = [read_document(path) for path in files]  # a bad file fails before the project is imported
    project = state.project(load=True)
    now = time.time()
    if documents:
        report = check_documents(documents, project.codec, now=now, time_limit=config.decision_timeout)
    else:
        store = open_read_only(config.store_url)
        try:
            report = check_store(
                store,
                project.codec,
                config.env,
                now=now,
                completed=completed,
                name=name,
                time_limit=config.decision_timeout,
            )
        finally:
            store.close()
    view = report.view()
    view["project"] = str(config.root)
    view["env"] = None if documents else config.env
    view["files"] = [str(path) for path in files]
    print_json(view) if as_json else check_report(view)
    return 1 if report.broken else 0


@click.command(short_help="An instance's journal (and archived runs) as a JSON document.")
@click.argument("ref", metavar="ID")
@click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write it to FILE.")
@common_options
def export(state: State, ref: str, name: str | None, output: Path | None) -> None:
    """Write instance ID's journal, and the runs `zenaton rewind` archived, as one JSON document
    (version 1, see docs/cli.md) on stdout or to FILE. `zenaton check FILE` and
    `zenaton.testing.replay(FILE, WorkflowClass)` replay it against the current code."""
    from zenaton_runtime.check.document import export_document

    instance = state.control().resolve(ref, name)
    store = state.store
    document = export_document(
        instance,
        store.journal(instance.id),
        store.archive(instance.id),
        exported_at=time.time(),
        zenaton=__version__,
    )
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ZenatonError(f"cannot write {output}: {error.strerror or error}") from None
    runs = len(document["archive"])
    archived = f" and {runs} archived run{'s' if runs != 1 else ''}" if runs else ""
    out.print(
        f"exported {instance.name} {instance.id} ({len(document['journal'])} journal entries{archived}) to {output}"
    )

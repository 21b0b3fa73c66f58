"""dispatch, list, inspect, wait: instances and their journals."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

import click
from rich.markup import escape

from zenaton_runtime.client.control import Control
from zenaton_runtime.client.inspect_views import instance_summary, instance_view
from zenaton_runtime.errors import NotFoundError, ZenatonError
from zenaton_runtime.models import InstanceStatus

from ..args import build, records
from ..render import instance_detail, instances_table, out, print_json
from ..state import State, common_options

STATUSES = [s.value for s in InstanceStatus]


@click.command(short_help="Start a workflow or task NAME with ARGS.")
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--arg", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument (repeatable).")
@click.option("--id", "custom_id", default=None, help="Custom id, instead of the workflow's id().")
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r"),
    default=None,
    help="Bulk: one instance per line, a JSON array of arguments (or one JSON object argument).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def dispatch(
    state: State,
    name: str,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    custom_id: str | None,
    from_file: TextIO | None,
    as_json: bool,
) -> None:
    """Start a workflow or task NAME with ARGS (JSON, or plain strings)."""
    control = state.control(load=True)
    cls = state.project().job(name)
    if from_file is not None:
        if args or kwargs or custom_id:
            raise click.UsageError("--from-file takes the arguments from the file; give no ARGS, --arg or --id")
        ids = bulk_dispatch(control, cls, from_file)
        refused = ids.count(None)
        if as_json:
            print_json({"ids": ids, "dispatched": len(ids) - refused, "refused": refused})
        else:
            out.print(
                f"dispatched {len(ids) - refused} {escape(name)} instance(s)"
                + (f", {refused} refused (custom id taken)" if refused else "")
            )
        return
    instance = control.dispatch(build(cls, args, kwargs), custom_id=custom_id)
    if as_json:
        print_json({"id": instance.id})
    else:
        out.print(instance.id)


def bulk_dispatch(control: Control, cls: type, lines: TextIO, chunk: int = 10_000) -> list[str | None]:
    """Every line is checked before anything is written; then chunks of one transaction each."""
    jobs = []
    for number, value in _json_lines(lines):
        arguments = value if isinstance(value, list) else [value]
        try:
            jobs.append(cls(*[records(a) for a in arguments]))
        except Exception as error:
            raise ZenatonError(
                f"line {number}: cannot create {cls.__name__}: {type(error).__name__}: {error}"
            ) from None
    ids: list[str | None] = []
    for start in range(0, len(jobs), chunk):
        ids += [i.id if i else None for i in control.dispatch_many(jobs[start : start + chunk])]
    return ids


def _json_lines(lines: TextIO) -> list[tuple[int, Any]]:
    """(line number, value) of each non-blank line; a line that is not one JSON value is named."""
    parsed = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                parsed.append((number, json.loads(line)))
            except ValueError as error:
                raise ZenatonError(f"line {number}: not JSON: {error}") from None
    return parsed


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--name", default=None, help="Only instances of this workflow or task.")
@click.option("--all-envs", is_flag=True, help="Instances of every environment.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def list_(state: State, status: str | None, name: str | None, all_envs: bool, limit: int, as_json: bool) -> None:
    """Instances, newest first."""
    env = None if all_envs else state.config.env
    rows = state.store.list_instances(
        env=env, name=name, status=InstanceStatus(status) if status else None, limit=limit
    )
    data = [instance_summary(row) for row in rows]
    print_json(data) if as_json else instances_table(data)


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--name", default=None, help="Workflow name, when a custom id matches several.")
@click.option("--step", type=int, default=None, help="Show one step (its position) in full.")
@click.option("--output", is_flag=True, help="Show each attempt's captured stdout and stderr.")
@click.option("--all-runs", is_flag=True, help="Also the runs that `zenaton rewind` archived.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def inspect(
    state: State, ref: str, name: str | None, step: int | None, output: bool, all_runs: bool, as_json: bool
) -> None:
    """An instance: status, properties and its timeline step by step."""
    instance = state.control().resolve(ref, name)
    archive = state.store.archive(instance.id)
    view = instance_view(instance, state.store.journal(instance.id), archive, all_runs)
    if as_json:
        if step is not None:
            view["steps"] = [s for s in view["steps"] if s["position"] == step]
            for run in view.get("runs", []):
                run["steps"] = [s for s in run["steps"] if s["position"] == step]
        print_json(view)
    else:
        instance_detail(view, step, output)


@click.command(short_help="Wait for an instance to stop; exit 0 only if it completed.")
@click.argument("ref", metavar="ID")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait.")
@common_options
def wait(state: State, ref: str, timeout: float) -> int:
    """Wait until an instance finishes or pauses; exit 0 only if it completed."""
    control = state.control()
    instance = control.resolve(ref)
    deadline = time.monotonic() + timeout
    while instance.status is InstanceStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        instance = control.get(instance.id)
    out.print(f"{instance.name} {instance.id} is {instance.status.value}")
    return 0 if instance.status is InstanceStatus.COMPLETED else 1


@click.command(short_help="The instance of workflow NAME with CUSTOM_ID.")
@click.argument("name")
@click.argument("custom_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def find(state: State, name: str, custom_id: str, as_json: bool) -> None:
    """The instance of workflow NAME with CUSTOM_ID, and its current properties."""
    instance = state.control().by_custom_id(name, custom_id)
    if instance is None:
        raise NotFoundError(f"no {name} instance with custom id {custom_id!r} in env {state.config.env!r}")
    view = instance_view(instance, [])
    del view["steps"]
    if as_json:
        print_json(view)
    else:
        instance_detail({**view, "steps": []}, timeline=False)

"""Command-line arguments turned into Python values and job objects."""

from __future__ import annotations

import json
from typing import Any

import click

from zenaton._record import Record
from zenaton.exceptions import ExternalError
from zenaton.workflows.version import Version
from zenaton_runtime.errors import ZenatonError


def parse_value(text: str) -> Any:
    """JSON when it parses as JSON (objects become Records), otherwise the string itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return records(value)


def records(value: Any) -> Any:
    """JSON objects (at any depth) as Records, readable as value["k"] and value.k."""
    if isinstance(value, dict):
        return Record({k: records(v) for k, v in value.items()})
    if isinstance(value, list):
        return [records(v) for v in value]
    return value


def parse_kwargs(pairs: tuple[str, ...]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE with KEY a Python name", param_hint="--arg")
        kwargs[key] = parse_value(value)
    return kwargs


def build(cls: type, args: tuple[str, ...], kwargs: tuple[str, ...]) -> Any:
    """An instance of ``cls`` from command-line arguments; the constructor's refusal is a clear error."""
    positional = [parse_value(a) for a in args]
    keywords = parse_kwargs(kwargs)
    try:
        job = cls(*positional, **keywords)
        if isinstance(job, Version):  # a Version keeps the arguments; its newest implementation takes them
            job.current_implementation()
        return job
    except ExternalError:  # a Version whose versions() is wrong: already a clear message
        raise
    except Exception as error:  # the user's constructor refused these arguments
        raise ZenatonError(
            f"cannot create {cls.__name__} with these arguments: {type(error).__name__}: {error}"
        ) from None

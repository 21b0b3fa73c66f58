"""The instances list: its filters as read from a query string, and one page of it.

A page is found by keyset paging: ``before`` is the id of the last instance of the previous
page, so the store reads only the rows it shows, however many instances there are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from zenaton_runtime.client.inspect_views import instance_summary
from zenaton_runtime.models import InstanceStatus
from zenaton_runtime.store import StoreReads

from .problems import BadRequest, whole_number

ALL_ENVS = "*"
PAGE = 50
MAX_PAGE = 500
MAX_TEXT = 500  # characters of a filter value
STATUSES = [s.value for s in InstanceStatus]


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    name: str | None = None
    env: str | None = None  # None: the project's env; ALL_ENVS: every env
    custom_id: str | None = None
    id_prefix: str | None = None
    before: str | None = None
    limit: int = PAGE

    def query(self, **changes: Any) -> str:
        """This list's address with ``changes`` (a value of None drops the filter)."""
        values = {k: v for k, v in vars(replace(self, **changes)).items() if v not in (None, "")}
        if values.get("limit") == PAGE:
            del values["limit"]
        return "?" + urlencode(values) if values else "?"

    @property
    def filtered(self) -> bool:
        return any((self.status, self.name, self.custom_id, self.id_prefix, self.env))


def read_filters(params: QueryParams) -> Filters:
    """The filters of a query string; a value that cannot be one is a BadRequest naming it."""
    values: dict[str, str | None] = {}
    for key in ("status", "name", "env", "custom_id", "id_prefix", "before"):
        value = params.get(key)
        if value is not None and len(value) > MAX_TEXT:
            raise BadRequest(f"{key} is longer than {MAX_TEXT} characters")
        if value is not None and "\x00" in value:
            raise BadRequest(f"{key} holds a NUL character")
        values[key] = value.strip() or None if value is not None else None
    status = values["status"]
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    limit_text = params.get("limit")
    limit = PAGE
    if limit_text:
        limit = whole_number(limit_text, "limit")
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return Filters(limit=limit, **values)


def page(store: StoreReads, filters: Filters, default_env: str) -> tuple[list[dict[str, Any]], str | None]:
    """One page of instances (as `zenaton list --json` prints them) and the cursor of the next, if any."""
    env = None if filters.env == ALL_ENVS else filters.env or default_env
    if filters.before is not None and store.get_instance(filters.before) is None:
        raise BadRequest(f"before must be an instance id (the last of the previous page), not {filters.before!r}")
    rows = store.list_instances(
        env=env,
        name=filters.name,
        status=InstanceStatus(filters.status) if filters.status else None,
        custom_id=filters.custom_id,
        id_prefix=filters.id_prefix,
        before=filters.before,
        limit=filters.limit + 1,
    )
    more = len(rows) > filters.limit
    shown = rows[: filters.limit]
    return [instance_summary(row) for row in shown], shown[-1].id if more and shown else None

"""``/api/...``: the pages' data as JSON, with the field names of the CLI's --json; and ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from zenaton_runtime.client.inspect_views import error_groups

from ..views import status_view
from . import listing
from .metrics import exposition
from .problems import whole_number
from .readings import counts_by_name, instance_page_view, schedules_view, version_of

if TYPE_CHECKING:
    from .app import Dashboard


def instances(d: Dashboard, request: Request) -> Response:
    """`zenaton list --json`'s items, one page of them, and the cursor of the next page."""
    filters = listing.read_filters(request.query_params)
    rows, next_cursor = listing.page(d.store(), filters, d.config.env)
    return JSONResponse({"instances": rows, "next": next_cursor})


def counts(d: Dashboard, request: Request) -> Response:
    env = request.query_params.get("env") or d.config.env
    return JSONResponse(counts_by_name(d.store(), None if env == listing.ALL_ENVS else env))


def instance(d: Dashboard, request: Request) -> Response:
    """`zenaton inspect --json`, with the page's additions (children, actions, pending requests)."""
    view = instance_page_view(d, d.control().resolve(request.path_params["id"]))
    return JSONResponse(view)


def version(d: Dashboard, request: Request) -> Response:
    """What the instance page polls to know when to redraw itself (``seq``: the last journal
    entry the page shows)."""
    instance = d.control().resolve(request.path_params["id"])
    seq = whole_number(request.query_params.get("seq") or "0", "seq", digits=12)
    return JSONResponse({"id": instance.id, "version": version_of(d.store(), instance.id, seq)})


def errors(d: Dashboard, request: Request) -> Response:
    """`zenaton errors --json`."""
    return JSONResponse(error_groups(d.control().failed(request.query_params.get("name") or None)))


def schedules(d: Dashboard, request: Request) -> Response:
    """`zenaton schedules --json`, with ``next_fire_local`` in the project's timezone."""
    return JSONResponse(schedules_view(d))


def status(d: Dashboard, request: Request) -> Response:
    """`zenaton status --json`."""
    return JSONResponse(status_view(d.config, d.store()))


def metrics(d: Dashboard, request: Request) -> Response:
    body, content_type = exposition(d.store())
    return Response(body, media_type=content_type)

"""The HTML pages: instances, one instance, errors, schedules, daemons (and their static files)."""

from __future__ import annotations

import importlib.resources
from typing import TYPE_CHECKING

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from zenaton.abstracts.event import Event
from zenaton_runtime.client.inspect_views import error_groups
from zenaton_runtime.errors import NotFoundError

from . import listing
from .readings import counts_by_name, daemons_view, instance_page_view, schedules_view, version_of
from .timeline_svg import draw

if TYPE_CHECKING:
    from .app import Dashboard

STATIC = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


def instances(d: Dashboard, request: Request) -> Response:
    filters = listing.read_filters(request.query_params)
    store = d.store()
    rows, next_cursor = listing.page(store, filters, d.config.env)
    env = None if filters.env == listing.ALL_ENVS else filters.env or d.config.env
    return d.render(
        "instances.html",
        request,
        filters=filters,
        rows=rows,
        next_cursor=next_cursor,
        counts=counts_by_name(store, env),
        statuses=listing.STATUSES,
        shown_env=env or "all environments",
    )


def instance(d: Dashboard, request: Request) -> Response:
    view = instance_page_view(d, d.control().resolve(request.path_params["id"]))
    events: list[str] = []
    if view["actions"].get("event"):
        events = event_names(d)
    return d.render(
        "instance.html",
        request,
        view=view,
        svg=Markup(draw(view["steps"], view)),
        events=events,
        version=version_of(d.store(), view["id"], view["last_seq"]),
        done=request.query_params.get("done"),
    )


def timeline(d: Dashboard, request: Request) -> Response:
    view = instance_page_view(d, d.control().resolve(request.path_params["id"]))
    return Response(draw(view["steps"], view, standalone=True), media_type="image/svg+xml")


def errors(d: Dashboard, request: Request) -> Response:
    name = request.query_params.get("name") or None
    groups = error_groups(d.control().failed(name))
    return d.render("errors.html", request, groups=groups, name=name, done=request.query_params.get("done"))


def schedules(d: Dashboard, request: Request) -> Response:
    return d.render("schedules.html", request, schedules=schedules_view(d), timezone=d.config.timezone)


def daemons(d: Dashboard, request: Request) -> Response:
    return d.render("daemons.html", request, status=daemons_view(d))


def static(d: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise NotFoundError(f"no static file {name!r}")
    data = importlib.resources.files("zenaton_cli.templates").joinpath("dashboard").joinpath(name).read_bytes()
    return Response(data, media_type=STATIC[name])


def event_names(d: Dashboard) -> list[str]:
    """The project's Event classes, for the send-event form (none when the code does not import)."""
    try:
        project = d.project()
    except Exception:
        return []
    return sorted(name for name, cls in project.classes.items() if issubclass(cls, Event))

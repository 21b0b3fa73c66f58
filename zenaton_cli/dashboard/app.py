"""The dashboard's routes and what its requests share.

Handlers are plain functions, run on a fixed pool of ``WORKERS`` threads that live as long as
the server: each thread reads the store through a connection of its own (``Dashboard.store``),
so the dashboard holds at most ``WORKERS`` connections, however its load comes and goes.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from zenaton_runtime.client.control import Control
from zenaton_runtime.project.config import Config
from zenaton_runtime.project.loader import Project, load_project
from zenaton_runtime.store import Store, open_store

from . import actions, api, pages
from .access import Guard, csrf_token
from .problems import BadRequest, status_of

MAX_BODY = 256 * 1024  # bytes of a POST's body
WORKERS = 8  # threads answering requests, each with its store connection
Handler = Callable[["Dashboard", Request], Response]


class Dashboard:
    """One project's dashboard: its config, token, templates and store connections."""

    def __init__(self, config: Config, token: str) -> None:
        self.config = config
        self.token = token
        self.csrf = csrf_token(token)
        self.templates = Environment(
            loader=PackageLoader("zenaton_cli.templates", "dashboard"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(when=when, pretty=pretty, short=short, seconds=seconds)
        self._threads = ThreadPoolExecutor(WORKERS, thread_name_prefix="dashboard")
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        self._project: Project | None = None

    def store(self) -> Store:
        """This thread's connection to the store (opened on first use)."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.config.store_url, durability=self.config.durability)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def control(self, env: str | None = None, *, load: bool = False) -> Control:
        """The CLI's control API on this thread's store (``load`` imports the project, for events)."""
        codec = self.project().codec if load else Project(self.config.root).codec
        return Control(self.store(), codec, env or self.config.env, self.config.timezone)

    def project(self) -> Project:
        """The project's code, imported once (building an event needs its class)."""
        with self._lock:
            if self._project is None:
                config = self.config
                self._project = load_project(config.root, config.boot, config.module)
            return self._project

    def render(self, template_name: str, request: Request, http_status: int = 200, **context: Any) -> HTMLResponse:
        template = self.templates.get_template(template_name)
        html = template.render(
            request=request,
            csrf=self.csrf,
            project=self.config.root.name,
            env=self.config.env,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=http_status)

    async def run(self, handler: Handler, request: Request) -> Response:
        """A handler on one of the dashboard's threads (never on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, handler, self, request)

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            store.close()


def when(value: str | None) -> str:
    """An ISO time as the pages show it: UTC, to the millisecond, without the date's T."""
    if not value:
        return ""
    return value.replace("T", " ").replace("Z", "")[:23] + "Z"


def pretty(value: Any) -> str:
    """A value as indented JSON (the properties block)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def short(value: Any, limit: int = 160) -> str:
    """A value as one line of JSON, cut at ``limit`` characters (table cells)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def create_app(config: Config, token: str, *, cookie: str = "zenaton_dashboard", hosts: Iterable[str] = ()) -> Any:
    """The ASGI application: the guard in front of the routes."""
    dashboard = Dashboard(config, token)

    def route(path: str, handler: Handler, methods: list[str] | None = None) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                if request.method == "POST":
                    request.state.form = await read_body(request)
                return await dashboard.run(handler, request)  # the store's calls block
            except Exception as error:
                return problem(dashboard, request, error)

        return Route(path, endpoint, methods=methods or ["GET", "HEAD"])

    routes = [
        route("/", pages.instances),
        route("/instances", pages.instances),  # the original SDK's instance_website_url()
        route("/instances/{id}", pages.instance),
        route("/instances/{id}/timeline.svg", pages.timeline),
        route("/errors", pages.errors),
        route("/schedules", pages.schedules),
        route("/daemons", pages.daemons),
        route("/static/{name}", pages.static),
        route("/metrics", api.metrics),
        route("/api/instances", api.instances),
        route("/api/counts", api.counts),
        route("/api/instances/{id}", api.instance),
        route("/api/instances/{id}/version", api.version),
        route("/api/errors", api.errors),
        route("/api/schedules", api.schedules),
        route("/api/status", api.status),
        route("/instances/{id}/{action}", actions.instance_action, ["POST"]),
        route("/errors/retry", actions.retry_group, ["POST"]),
        route("/api/instances/{id}/{action}", actions.api_action, ["POST"]),
        route("/api/retry", actions.api_retry_group, ["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        dashboard.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dashboard
    return Guard(app, token, cookie=cookie, hosts=hosts)


def problem(dashboard: Dashboard, request: Request, error: Exception) -> Response:
    """An error while answering: its status and one line (JSON for the API); a bug of ours is a
    500 with its class named, never a traceback in the page."""
    status = status_of(error)
    message = str(error) if status != 500 else f"internal error: {type(error).__name__} (see the dashboard's log)"
    if status == 500:
        import traceback

        traceback.print_exception(error)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return dashboard.render("problem.html", request, http_status=status, status_code=status, message=message)


async def read_body(request: Request) -> dict[str, str]:
    """A POST's fields: a form (urlencoded or multipart, no files) or a JSON object of strings."""
    declared = request.headers.get("content-length", "0")
    if declared.isascii() and declared.isdecimal() and int(declared) > MAX_BODY:
        raise BadRequest(f"the request's body is larger than {MAX_BODY // 1024} KiB")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"the request's body is larger than {MAX_BODY // 1024} KiB")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(body or b"{}")
        except (ValueError, RecursionError) as error:
            raise BadRequest(f"the body is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise BadRequest("the body must be a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    try:
        form = await request.form(max_files=0, max_fields=100)
    except Exception as error:  # a malformed body: the parser's own words
        raise BadRequest(f"cannot read the form: {error}") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}

"""The POSTed actions: pause, resume, kill, retry, send an event, rewind; retry a group of errors.

Each goes through the control API exactly as the CLI's command of the same name: it posts an
inbox item, then waits as long as the command (``ACK_TIMEOUT``) for a running daemon to apply
it, and says what happened. Kill and
rewind destroy: the page asks for a confirmation first (a second form), unless ``confirmed=yes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from zenaton_runtime.client.control import Control
from zenaton_runtime.client.inspect_views import error_groups
from zenaton_runtime.errors import NotFoundError, StateError
from zenaton_runtime.models import Instance

from ..args import records
from ..commands.control import ACK_TIMEOUT
from .access import same
from .problems import BadRequest, Forbidden, whole_number
from .readings import daemon_running

if TYPE_CHECKING:
    from .app import Dashboard

ACTIONS = ("pause", "resume", "kill", "retry", "event", "rewind")
DESTRUCTIVE = ("kill", "rewind")
MAX_TEXT = 64 * 1024  # characters of one form value (an event's arguments)


@dataclass(frozen=True)
class Outcome:
    id: str
    action: str
    applied: bool
    status: str
    message: str

    def json(self) -> dict[str, Any]:
        """As the CLI's --json prints an action."""
        return {"id": self.id, "action": self.action, "applied": self.applied, "status": self.status}


def form_of(d: Dashboard, request: Request) -> dict[str, str]:
    """The request's fields (parsed by the route), once its CSRF token is checked when the
    request came with the cookie."""
    form: dict[str, str] = request.state.form
    if request.state.auth == "cookie":
        given = form.get("csrf") or request.headers.get("x-csrf-token")
        if not same(given, d.csrf):
            raise Forbidden("this form has no valid CSRF token: reload the page and try again")
    for key, value in form.items():
        if len(value) > MAX_TEXT:
            raise BadRequest(f"{key} is longer than {MAX_TEXT} characters")
    return form


def instance_action(d: Dashboard, request: Request) -> Response:
    form = form_of(d, request)
    action = _action(request)
    control = d.control(load=action == "event")
    instance = control.resolve(request.path_params["id"])
    if action in DESTRUCTIVE and form.get("confirmed") != "yes":
        return d.render("confirm.html", request, action=action, instance=instance, fields=form)
    outcome = perform(d, control, instance, action, form)
    return RedirectResponse(f"/instances/{quote(instance.id)}?done={quote(outcome.message)}", status_code=303)


def api_action(d: Dashboard, request: Request) -> Response:
    form = form_of(d, request)
    action = _action(request)
    control = d.control(load=action == "event")
    instance = control.resolve(request.path_params["id"])
    outcome = perform(d, control, instance, action, form)
    return JSONResponse({**outcome.json(), "message": outcome.message})


def retry_group(d: Dashboard, request: Request) -> Response:
    retried = _retry_group(d, form_of(d, request))
    message = f"retry posted for {len(retried)} instance(s)"
    return RedirectResponse(f"/errors?done={quote(message)}", status_code=303)


def api_retry_group(d: Dashboard, request: Request) -> Response:
    return JSONResponse({"retried": _retry_group(d, form_of(d, request))})


def perform(d: Dashboard, control: Control, instance: Instance, action: str, form: dict[str, str]) -> Outcome:
    """Post the action's inbox item, wait briefly for the daemon, and tell what happened."""
    if action == "rewind":
        return _rewind(d, control, instance, form)
    if action == "event":
        event = build_event(d, form)
        item = control.send_event(instance, event)
        action = f"event {type(event).__name__}"
    else:
        item = getattr(control, action)(instance)
    daemon = daemon_running(d)
    applied = daemon and control.applied(instance.id, item, ACK_TIMEOUT)
    status = control.get(instance.id).status.value
    return Outcome(instance.id, action, applied, status, _said(action, instance, daemon, applied, status))


def build_event(d: Dashboard, form: dict[str, str]) -> Any:
    """The event named in the form, built from its arguments (a JSON array, or a JSON object of
    keyword arguments)."""
    name = (form.get("event") or "").strip()
    if not name:
        raise BadRequest("name the event to send")
    try:
        cls = d.project().event(name)
    except NotFoundError as error:
        raise BadRequest(str(error)) from None
    text = (form.get("args") or "").strip()
    try:
        value = json.loads(text) if text else []
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"the event's arguments are not JSON: {error}") from None
    if not isinstance(value, (list, dict)):
        raise BadRequest("the event's arguments must be a JSON array (positional) or object (keywords)")
    args, kwargs = (value, {}) if isinstance(value, list) else ([], value)
    try:
        return cls(*records(args), **{str(k): records(v) for k, v in kwargs.items()})
    except Exception as error:  # the user's constructor refused these arguments
        raise BadRequest(f"cannot create {name} with these arguments: {type(error).__name__}: {error}") from None


def _rewind(d: Dashboard, control: Control, instance: Instance, form: dict[str, str]) -> Outcome:
    step = whole_number(form.get("step") or "", "the step to rewind to")
    request = control.rewind(instance, step)
    assert request.item_id is not None
    daemon = daemon_running(d)
    if daemon:
        control.applied(instance.id, request.item_id, ACK_TIMEOUT)
    outcome = control.rewind_outcome(request)
    status = control.get(instance.id).status.value
    if outcome.refused:
        reason = outcome.reason or "see its log"
        raise StateError(f"the daemon refused to rewind {instance.name} {instance.id}: {reason}")
    message = _said(f"rewind to step {step}", instance, daemon, outcome.applied, status)
    if outcome.run is not None:
        message += f" (run {outcome.run})"
    return Outcome(instance.id, "rewind", outcome.applied, status, message)


def _retry_group(d: Dashboard, form: dict[str, str]) -> list[str]:
    """Retry every instance of one error group (``class`` and ``task``), or of all (``all=yes``)."""
    control = d.control()
    everything = form.get("all") == "yes"
    if not everything and not (form.get("class") and form.get("task")):
        raise BadRequest("say which group to retry (class and task) or all=yes")
    retried = []
    for group in error_groups(control.failed()):
        if everything or (group["class"] == form.get("class") and group["task"] == form.get("task")):
            for instance_id in group["ids"]:
                try:
                    control.retry(control.get(instance_id))
                except StateError:  # changed since the page was drawn (retried, killed)
                    continue
                retried.append(instance_id)
    return retried


def _action(request: Request) -> str:
    action = str(request.path_params["action"])
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r} (one of {', '.join(ACTIONS)})")
    return action


def _said(action: str, instance: Instance, daemon: bool, applied: bool, status: str) -> str:
    if applied:
        return f"{action}: done, {instance.name} is now {status}"
    if daemon:
        return f"{action}: posted; the daemon has not applied it yet ({instance.name} is {status})"
    return f"{action}: queued; no daemon is running, it applies at the next `zenaton start`"

"""Who may read and act: the access token, its cookie, the CSRF token and the Host check.

The token is random, kept 0600 in the project's state folder and rotated on request. A browser
brings it once in the query string (``/?token=...``, the address `zenaton dashboard` prints):
the guard answers with a cookie (HttpOnly, SameSite=Strict) and a redirect to the same address
without it. Scripts send ``Authorization: Bearer <token>``. Anything else gets a 401 and reads
nothing. The Host header must name this machine (a page of another site that rebinds its DNS
name to 127.0.0.1 is refused), and every response forbids framing, inline scripts and referrers.

A POST authenticated by the cookie must also carry the CSRF token (a form field ``csrf`` or an
``X-CSRF-Token`` header): a page of another site can make the browser send the cookie, but it
cannot read the CSRF token. A POST with the Bearer header needs none: no browser adds that header
on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.datastructures import URL, Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_FILE = "dashboard.token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def load_token(state_dir: Path, *, rotate: bool = False) -> str:
    """The project's dashboard token: read, or made (and replaced with ``rotate``)."""
    path = token_path(state_dir)
    if not rotate:
        try:
            token = path.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            token = ""
        if len(token) >= 32:
            return token
    token = secrets.token_urlsafe(32)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)  # never a half-written token
    return token


def csrf_token(token: str) -> str:
    """The CSRF token that goes with an access token (rotates with it)."""
    return hmac.new(token.encode(), b"zenaton-dashboard-csrf", hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


HOST_HEADER = re.compile(r"\[(?P<ip6>[0-9a-f:.]+)\](:\d{1,5})?|(?P<name>[a-z0-9.-]+)(:\d{1,5})?")


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port ("[::1]:8025" -> "::1"); "" when the header
    is not a name with an optional port."""
    match = HOST_HEADER.fullmatch(host_header.strip().lower())
    if match is None:
        return ""
    return match["ip6"] or match["name"].rstrip(".")


class Guard:
    """ASGI middleware in front of every route: Host check, then the token, then the app."""

    def __init__(self, app: ASGIApp, token: str, *, cookie: str, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie
        # names as given (not Host headers): "::1", "[::1]", "Box.Example." -> "::1", "box.example"
        self.hosts = LOOPBACK | {n for n in (h.strip().lower().strip("[]").rstrip(".") for h in hosts) if n}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        secured = _with_headers(send, time.perf_counter())
        name = host_name(headers.get("host", ""))
        if not name or name not in self.hosts:
            await _refuse(scope, secured, 400, "this dashboard does not answer for that Host header")
            return
        url = URL(scope=scope)
        query = QueryParams(scope["query_string"])
        given = query.get("token")
        if given is not None:
            if not same(given, self.token):
                await _refuse(scope, secured, 401, "wrong dashboard token")
                return
            await self._enter(url.path, query, secured)
            return
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and same(bearer[7:].strip(), self.token):
            scope.setdefault("state", {})["auth"] = "bearer"
        elif same(_cookie(headers, self.cookie), self.token):
            scope.setdefault("state", {})["auth"] = "cookie"
        else:
            await _refuse(scope, secured, 401, "a token is needed: open the address `zenaton dashboard` prints")
            return
        if scope["method"] not in ("GET", "HEAD", "POST"):
            await _refuse(scope, secured, 405, f"method {scope['method']} is not allowed")
            return
        await self.app(scope, receive, secured)

    async def _enter(self, path: str, query: QueryParams, send: Send) -> None:
        """The token was right: keep it in a cookie, and go to the same page without it in the address."""
        rest = [(k, v) for k, v in query.multi_items() if k != "token"]
        # A path of this server only: "//evil.example" would send the browser elsewhere.
        location = "/" + quote(path.lstrip("/\\"), safe="/") + (f"?{urlencode(rest)}" if rest else "")
        cookie = f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _with_headers(send: Send, started: float) -> Send:
    """``send`` adding the security headers, and the time the server took (Server-Timing, in ms)."""

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
            extra.append((b"server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()))
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return secured


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """A refusal in JSON for the API and metrics, in a line of text otherwise; nothing else is read."""
    if scope["path"].startswith(("/api/", "/metrics")):
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    else:
        body, kind = f"{status}: {message}\n".encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="zenaton"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

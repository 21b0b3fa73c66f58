"""Serving the dashboard: uvicorn on a socket we bind ourselves, so the address is known (and
printed) before the first request, and a busy port is one clear error."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.project.config import Config

from .app import create_app

WILDCARDS = ("0.0.0.0", "::", "")


class DashboardError(ZenatonError):
    """The dashboard cannot start (the address is taken, the host unknown)."""


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise DashboardError(f"port {port} on {host} is already in use; choose another with --port") from None
        raise DashboardError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    # Accepted connections inherit it: without it, a response's body waits for the client's
    # delayed ACK of its headers (40 ms a request on Linux), since asyncio sets it only on
    # sockets it knows to be TCP.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_host(host: str) -> str:
    """How the printed address names this machine."""
    if host in WILDCARDS:
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def serve(
    config: Config,
    token: str,
    *,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...] = (),
    announce: Callable[[str, str], None],
    parent_pid: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM (or until ``parent_pid`` is gone: the daemon that started it)."""
    import uvicorn  # the dashboard extra: imported only when serving

    sock = bind(host, port)
    bound = sock.getsockname()[1]
    hosts = {host, *allowed_hosts}
    if host in WILDCARDS:
        hosts |= {socket.gethostname(), socket.getfqdn()}
    app = create_app(config, token, cookie=f"zenaton_dashboard_{bound}", hosts=hosts - {""})
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
    )
    announce(f"http://{url_host(host)}:{bound}/?token={token}", host)
    if parent_pid is not None:
        threading.Thread(target=_follow, args=(server, parent_pid), daemon=True).start()
    # uvicorn stops on SIGTERM, then raises it again for the handler it found: this one, which
    # asks the server to stop (a SIGTERM before uvicorn listens for it) and lets the process
    # exit 0, as a stop asked for by a service manager (or by the daemon we run beside) should.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: setattr(server, "should_exit", True))
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()


def _follow(server: object, parent_pid: int) -> None:
    """Stop when the process that started us is gone (a daemon killed with SIGKILL)."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    server.should_exit = True  # type: ignore[attr-defined]

"""Telling systemd how the daemon is doing (the sd_notify protocol), when it runs as a service.

systemd passes a unix datagram socket in NOTIFY_SOCKET (a unit of ``Type=notify``); one
datagram of ``KEY=value`` lines says the daemon is ready, what it is doing, or that it stops.
Without the variable every call does nothing. ``take_socket()`` removes the variable from the
environment, so that the task workers the daemon starts do not inherit it.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """The socket systemd gave the daemon, or none."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    @classmethod
    def take_socket(cls) -> Notifier:
        return cls(os.environ.pop("NOTIFY_SOCKET", None) or None)

    def send(self, **fields: str) -> bool:
        """One datagram: READY="1", STATUS="...", STOPPING="1"; False when nobody listens."""
        if not self.address:
            return False
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address  # abstract namespace
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(address)
                sock.sendall(message)
        except OSError:  # systemd went away, or the socket is not one: the daemon runs on
            return False
        return True

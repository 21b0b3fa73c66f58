"""Waking the daemon of a SQLite store when another process writes to it.

SQLite tells nobody of a commit. So the daemon binds a unix datagram socket named after its
store (Linux's abstract namespace: no file to leave behind, no path length limit), and every
other writer sends it one byte after each commit it makes (a dispatch, an event, a control
request, a schedule). The socket sits in the daemon's select (``Store.wakeup_fd``); the daemon's
next look for work reads the bytes off (``drain``), so it does not stay readable. A byte that
cannot be sent (no daemon, a full queue: it is awake already) is no loss: the daemon still looks
at the store every ``IDLE_FALLBACK``. Where abstract sockets do not exist, there is no wake-up
socket and the daemon polls as before.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket


def address(store_path: str) -> str | None:
    """The abstract socket's name for this store file (None where there is no such namespace)."""
    if not sys.platform.startswith("linux"):
        return None
    import hashlib  # here: a store opened to read never needs it (OpenSSL's module is slow to load)

    digest = hashlib.sha256(os.path.realpath(store_path).encode()).hexdigest()[:32]
    return f"\0zenaton-wake-{digest}"


class Waker:
    """One process's end: ``listen`` in the daemon, ``nudge`` in the others."""

    def __init__(self, store_path: str) -> None:
        self._store_path = store_path
        self._listening: socket.socket | None = None
        self._sending: socket.socket | None = None

    @functools.cached_property
    def address(self) -> str | None:
        """Worked out on first use: a process that only reads never needs it."""
        return address(self._store_path)

    def listen(self) -> int | None:
        """The daemon's socket (bound once), or None when it cannot be."""
        if self._listening is None and self.address is not None:
            import socket

            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            try:
                sock.bind(self.address)
            except OSError:  # another process listens for this store: not ours to wake
                sock.close()
                self.address = None
                return None
            self._listening = sock
        return None if self._listening is None else self._listening.fileno()

    def drain(self) -> None:
        """Read every pending byte off, so that the socket is quiet until the next write."""
        if self._listening is None:
            return
        try:
            while self._listening.recv(64):
                pass
        except OSError:  # BlockingIOError: nothing more
            pass

    def nudge(self) -> None:
        """Tell the daemon (if one listens) that this process wrote; never waits, never fails."""
        if self.address is None or self._listening is not None:
            return  # the daemon's own writes wake nobody
        import socket

        try:
            if self._sending is None:
                self._sending = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sending.sendto(b"!", socket.MSG_DONTWAIT, self.address)
        except OSError:  # no daemon listening, or its queue full (it is awake already)
            pass

    def close(self) -> None:
        for sock in (self._listening, self._sending):
            if sock is not None:
                sock.close()
        self._listening = self._sending = None

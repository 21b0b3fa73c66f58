"""Events sent to running workflows."""

from __future__ import annotations


class Event:
    """Subclass to define an event; its attributes travel with it."""

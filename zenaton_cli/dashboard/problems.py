"""What a request did wrong, as an HTTP status and one line: never a 500 for bad input."""

from __future__ import annotations

from zenaton.exceptions import ExternalError
from zenaton_runtime.errors import (
    AmbiguousError,
    DuplicateInstanceError,
    NotFoundError,
    StateError,
    StoreError,
    ZenatonError,
)


class BadRequest(ZenatonError):
    """A query or form value the dashboard cannot use."""


class Forbidden(ZenatonError):
    """A state-changing request without its CSRF token."""


def status_of(error: Exception) -> int:
    """The HTTP status for an error raised while answering a request."""
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, (StateError, DuplicateInstanceError)):
        return 409
    if isinstance(error, StoreError):
        return 503
    if isinstance(error, (BadRequest, AmbiguousError, ZenatonError, ExternalError)):
        return 400
    return 500


def whole_number(text: str, what: str, *, digits: int = 9) -> int:
    """A form or query value that must be a whole number (ASCII digits only: "²" is not one)."""
    text = text.strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > digits:
        raise BadRequest(f"{what} must be a whole number, not {text[:40]!r}")
    return int(text)

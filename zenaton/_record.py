"""Record: a dict whose keys also read as attributes."""

from __future__ import annotations

from typing import Any


class Record(dict):  # type: ignore[type-arg]
    """A dict where ``r["email"]`` can also be written ``r.email``.

    Used for JSON objects given on the command line, so workflow code written for
    objects (``user.email``) works on them. Setting an attribute sets the key.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Record({dict.__repr__(self)})"

"""The engine's own errors: one root, with messages meant for users."""

from __future__ import annotations

from zenaton.exceptions import DuplicateIdError, InvalidArgumentError


class ZenatonError(Exception):
    """Root of the runtime's errors; the message is shown to the user as is."""


class ConfigError(ZenatonError):
    """zenaton.toml, .env or the environment is wrong."""


class StoreError(ZenatonError):
    """The store cannot be opened or written."""


class LeaseLost(StoreError):
    """A step wrote to instances this daemon no longer owns (another daemon took them over while
    this one's lease had run out): the whole step was refused, nothing of it written."""

    def __init__(self, instance_ids: list[str]) -> None:
        super().__init__(f"{len(instance_ids)} instance(s) now owned by another daemon: {', '.join(instance_ids[:3])}")
        self.instance_ids = instance_ids


class DuplicateInstanceError(ZenatonError, DuplicateIdError):
    """An unfinished instance of this workflow already has this custom id."""


class NotFoundError(ZenatonError):
    """No instance, class or record matches."""


class AmbiguousError(ZenatonError):
    """Several instances match."""


class StateError(ZenatonError):
    """The instance's status does not allow the operation."""


class SerializationError(ZenatonError, InvalidArgumentError):
    """A value cannot be stored or read back."""


class DaemonError(ZenatonError):
    """The daemon cannot start, or is not running."""


class EngineInterrupt(BaseException):
    """Engine control flow (eviction, kill) thrown into workflow code.

    Derives from BaseException so that user code's ``except Exception`` cannot swallow it.
    """

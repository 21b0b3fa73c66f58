"""Errors raised by the Zenaton SDK (the original names and hierarchy)."""

from __future__ import annotations


class Error(Exception):
    """Base of the SDK's errors."""


class InternalError(Error):
    """Something went wrong inside the engine."""


class ExternalError(Error):
    """The calling code did something the SDK does not allow."""


class InvalidArgumentError(ExternalError):
    """An argument has the wrong type or value."""


class OutOfRangeError(InvalidArgumentError, ValueError):
    """A Wait given a day of the month or a time of day that does not exist: also a ValueError,
    as the original SDK raised for them."""


class UnknownWorkflowError(ExternalError):
    """The workflow named is not known to the project."""


class UnknownInstanceError(ExternalError):
    """No instance matches the workflow and id given."""


class DuplicateIdError(ExternalError):
    """An unfinished instance of this workflow already uses this id."""


class InstanceStateError(ExternalError):
    """The instance is not in a state that allows the operation."""


class TaskCrashedError(Error):
    """The worker process running a task attempt died."""


class TaskTimeoutError(Error):
    """A task attempt ran longer than its max_processing_time()."""

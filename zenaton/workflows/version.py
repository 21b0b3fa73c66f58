"""Version: several implementations of one workflow; new instances run the newest."""

from __future__ import annotations

from typing import Any

from ..abstracts.workflow import Workflow
from ..exceptions import ExternalError
from ..traits.zenatonable import Zenatonable


class Version(Workflow, Zenatonable):
    """Subclass and list implementations, oldest first, in ``versions()``.

    A new instance runs ``versions()[-1]``; a running instance keeps the
    implementation it started with.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def versions(self) -> list[type]:
        """The implementation classes, oldest first: override it."""
        raise NotImplementedError("Please override the `versions' method in your subclass")

    def handle(self) -> Any:
        return self.current_implementation().handle()

    def current(self) -> type:
        return self._checked_versions()[-1]

    def initial(self) -> type:
        return self._checked_versions()[0]

    def current_implementation(self) -> Workflow:
        implementation: Workflow = self.current()(*getattr(self, "args", ()), **getattr(self, "kwargs", {}))
        return implementation

    def id(self) -> Any:
        return self.current_implementation().id()

    def _checked_versions(self) -> list[type]:
        versions = self.versions()
        if not isinstance(versions, list) or not versions:
            raise ExternalError(f"{type(self).__name__}.versions() must return a non-empty list")
        for version in versions:
            if not (isinstance(version, type) and issubclass(version, Workflow)):
                raise ExternalError(f"{type(self).__name__}.versions() holds {version!r}, not a Workflow")
        return versions

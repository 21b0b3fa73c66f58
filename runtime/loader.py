"""Import the user's project and keep a registry of its classes by name.

The project is imported from its ``boot.py`` (or a module named in
zenaton.toml) with the project root first on ``sys.path``. Only modules whose
files live under the project root count as project modules: the serializer
decodes classes from those modules and from the ``zenaton`` package, nothing else.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zenaton.abstracts.event import Event
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow

from .errors import ConfigError, NotFoundError
from .serializer import Codec

JOB_BASES = (Workflow, Task, Event)


@dataclass
class Project:
    """The loaded project: its root, its classes by name, and a codec that trusts it."""

    root: Path
    classes: dict[str, type] = field(default_factory=dict)
    codec: Codec = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.codec = Codec(self.is_project_module)

    def is_project_module(self, module_name: str) -> bool:
        """True for a module whose file is under the project root, checked without importing it."""
        module = sys.modules.get(module_name)
        if module is not None:
            origin = getattr(module, "__file__", None)
        else:
            top = module_name.partition(".")[0]
            if top in sys.builtin_module_names:
                return False
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                return False
            origin = spec.origin if spec else None
            if spec and spec.submodule_search_locations and not origin:
                origin = next(iter(spec.submodule_search_locations), None)
        if not origin:
            return False
        try:
            Path(origin).resolve().relative_to(self.root)
        except ValueError:
            return False
        return "site-packages" not in Path(origin).parts

    def workflow(self, name: str) -> type:
        return self._lookup(name, Workflow, "workflow")

    def task(self, name: str) -> type:
        return self._lookup(name, Task, "task")

    def job(self, name: str) -> type:
        return self._lookup(name, (Workflow, Task), "workflow or task")

    def event(self, name: str) -> type:
        return self._lookup(name, Event, "event")

    def _lookup(self, name: str, base: type | tuple[type, ...], what: str) -> type:
        cls = self.classes.get(name)
        if cls is not None and issubclass(cls, base):
            return cls
        known = sorted(n for n, c in self.classes.items() if issubclass(c, base))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else (f"; known: {', '.join(known)}" if known else "")
        raise NotFoundError(f"unknown {what} {name!r}{hint}")

    def scan(self) -> None:
        """Register every Workflow, Task and Event class defined in a project module."""
        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", None)
            if not name or not self.is_project_module(name):
                continue
            for attr in list(vars(module).values()):
                if (
                    inspect.isclass(attr)
                    and issubclass(attr, JOB_BASES)
                    and attr.__module__ == name
                    and not inspect.isabstract(attr)
                ):
                    self.classes.setdefault(attr.__name__, attr)


def load_project(root: Path, boot: str | None = "boot.py", module: str | None = None) -> Project:
    """Import the project (its boot file or module) and return it with its classes registered."""
    project = Project(Path(root))
    # The project root and the boot file's own directory: a boot.py imports its siblings.
    for directory in {project.root, (project.root / (boot or ".")).parent.resolve()}:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    root_str = str(project.root)
    previous_cwd = os.getcwd()
    os.chdir(root_str)  # a boot.py may open files relative to the project
    try:
        if module:
            _import(module)
        elif boot:
            _import_boot(project.root / boot)
    finally:
        os.chdir(previous_cwd)
    project.scan()
    return project


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(f"cannot import project module {module!r}: {error}") from None
    except SyntaxError as error:
        raise ConfigError(f"syntax error in {error.filename}, line {error.lineno}: {error.msg}") from None


def _import_boot(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"boot file not found: {path}")
    name = path.stem
    existing = getattr(sys.modules.get(name), "__file__", None)
    if existing and Path(existing).resolve() == path.resolve():
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load boot file {path}")
    boot_module = importlib.util.module_from_spec(spec)
    sys.modules[name] = boot_module
    try:
        spec.loader.exec_module(boot_module)
    except SyntaxError as error:
        del sys.modules[name]
        raise ConfigError(f"syntax error in {error.filename}, line {error.lineno}: {error.msg}") from None
    except ImportError as error:
        del sys.modules[name]
        raise ConfigError(f"cannot import the project from {path}: {error}") from None

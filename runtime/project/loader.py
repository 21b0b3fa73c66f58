"""Import the user's project and keep a registry of its classes by name.

The project is imported from its ``boot.py`` (or a module named in
zenaton.toml) with the project root first on ``sys.path``. Only modules whose
files live under the project root count as project modules: the serializer
decodes classes from those modules and from the ``zenaton`` package, nothing else.

The daemon imports the project through a ``SourceSnapshot``: the source text of every
project module it imported is kept, and its task workers import that same text, not
whatever is on disk when they start. So a file saved with a syntax error never reaches
a worker, and the daemon and its workers always run the same code.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from zenaton.abstracts.event import Event
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton_runtime.errors import ConfigError, NotFoundError
from zenaton_runtime.project.serializer import Codec

JOB_BASES = (Workflow, Task, Event)
ENGINE_PACKAGES = ("zenaton", "zenaton_runtime", "zenaton_cli")
# Where those packages' files are (the repository's folders in a source checkout).
ENGINE_DIRS = tuple(
    Path(os.path.realpath(importlib.util.find_spec(name).submodule_search_locations[0]))  # type: ignore[union-attr,index]
    for name in ENGINE_PACKAGES
)


def engine_module(name: str) -> bool:
    """A module of this package itself: never reloaded, never served from a snapshot."""
    return name.partition(".")[0] in ENGINE_PACKAGES


def engine_file(path: Path) -> bool:
    """A file of the engine's own packages, wherever they are installed."""
    return any(path == folder or folder in path.parents for folder in ENGINE_DIRS)


class SourceSnapshot(importlib.abc.MetaPathFinder):
    """Imports project modules from recorded source text; records what it reads from disk.

    A module's source is read from disk once, at its first import, and kept: a worker
    given the daemon's snapshot imports exactly the code the daemon imported. Compiled
    from source each time (no .pyc), so a cached file can never stand in for the text.
    """

    def __init__(self, root: Path, sources: Mapping[str, bytes] | None = None) -> None:
        self.root = root.resolve()
        self.sources: dict[str, bytes] = {os.path.realpath(k): v for k, v in (sources or {}).items()}

    @classmethod
    def read(cls, path: Path, root: Path) -> SourceSnapshot:
        """A snapshot written by ``write`` (latin-1 keeps every byte as it was)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(root, {name: text.encode("latin-1") for name, text in data.items()})

    def write(self, path: Path) -> None:
        data = {name: source.decode("latin-1") for name, source in self.sources.items()}
        path.write_text(json.dumps(data), encoding="utf-8")

    def source(self, filename: str) -> bytes:
        key = os.path.realpath(filename)
        if key not in self.sources:
            with open(key, "rb") as handle:
                self.sources[key] = handle.read()
        return self.sources[key]

    def covers(self, filename: str) -> bool:
        path = Path(os.path.realpath(filename))
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        return (
            path.suffix == ".py"
            and "site-packages" not in path.parts
            and not engine_file(path)
            and bool(relative.parts)
        )

    def loader(self, fullname: str, filename: str) -> importlib.abc.SourceLoader:
        return _SnapshotLoader(fullname, filename, self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if engine_module(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.has_location or not spec.origin or not self.covers(spec.origin):
            return None
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=self.loader(fullname, spec.origin),
            submodule_search_locations=spec.submodule_search_locations,
        )

    def install(self) -> None:
        """Just before the path finder, replacing any other snapshot of the same root."""
        finders = [f for f in sys.meta_path if not (isinstance(f, SourceSnapshot) and f.root == self.root)]
        at = next((i for i, f in enumerate(finders) if f is importlib.machinery.PathFinder), len(finders))
        finders.insert(at, self)
        sys.meta_path[:] = finders

    def uninstall(self) -> None:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]


class _SnapshotLoader(importlib.abc.SourceLoader):
    def __init__(self, fullname: str, filename: str, snapshot: SourceSnapshot) -> None:
        self.name = fullname
        self.path = filename
        self.snapshot = snapshot

    def get_filename(self, fullname: str | None = None) -> str:
        return self.path

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self.snapshot.source(path)
        with open(path, "rb") as handle:
            return handle.read()


@dataclass
class Project:
    """The loaded project: its root, its classes by name, and a codec that trusts it."""

    root: Path
    classes: dict[str, type] = field(default_factory=dict)
    codec: Codec = field(init=False)
    snapshot: SourceSnapshot | None = None  # the source text it was imported from (daemon, workers)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.codec = Codec(self.is_project_module)
        self._verdicts: dict[str, bool] = {}

    def is_project_module(self, module_name: str) -> bool:
        """True for a module whose file is under the project root, checked without importing it."""
        verdict = self._verdicts.get(module_name)
        if verdict is None:  # asked at every decode: resolving paths each time would cost more than the rest
            verdict = self._verdicts[module_name] = self._is_project_module(module_name)
        return verdict

    def _is_project_module(self, module_name: str) -> bool:
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


def load_project(
    root: Path, boot: str | None = "boot.py", module: str | None = None, *, snapshot: SourceSnapshot | None = None
) -> Project:
    """Import the project (its boot file or module) and return it with its classes registered.

    With ``snapshot``, project modules are imported from (and recorded into) it; it stays
    installed so that modules imported later, lazily, come from it too.
    """
    project = Project(Path(root), snapshot=snapshot)
    if snapshot is not None:
        snapshot.install()
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
            _import_boot(project.root / boot, snapshot)
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


def project_modules(root: Path) -> dict[str, ModuleType]:
    """The imported modules whose files are under ``root`` (never the engine's own packages)."""
    probe = Project(root)
    return {
        name: module
        for name, module in list(sys.modules.items())
        if isinstance(module, ModuleType)
        and name not in ("__main__", "__mp_main__")
        and not engine_module(name)
        and probe.is_project_module(name)
    }


def reload_project(current: Project, boot: str | None = "boot.py", module: str | None = None) -> Project:
    """Import the project again, from disk, as a new Project.

    On any failure (a syntax error, an import error, an exception raised at import
    time) the previous modules and snapshot are put back, so ``current`` keeps working,
    and the error is raised.
    """
    previous = project_modules(current.root)
    for name in previous:
        del sys.modules[name]
    importlib.invalidate_caches()
    snapshot = SourceSnapshot(current.root) if current.snapshot is not None else None
    try:
        return load_project(current.root, boot, module, snapshot=snapshot)
    except BaseException:
        for name in project_modules(current.root):
            del sys.modules[name]
        sys.modules.update(previous)
        if snapshot is not None:
            snapshot.uninstall()
        if current.snapshot is not None:
            current.snapshot.install()
        raise


def _import_boot(path: Path, snapshot: SourceSnapshot | None = None) -> None:
    if not path.is_file():
        raise ConfigError(f"boot file not found: {path}")
    name = path.stem
    existing = getattr(sys.modules.get(name), "__file__", None)
    if existing and Path(existing).resolve() == path.resolve():
        return
    loader = snapshot.loader(name, str(path)) if snapshot is not None else None
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
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

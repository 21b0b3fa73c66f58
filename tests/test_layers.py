"""The engine's layers, as runtime/__init__.py and each sub-package's docstring state them:
no import cycle, and each sub-package imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"

# What each part of zenaton_runtime may import at module level (besides itself and zenaton).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "models": set(),
    "project": {"errors", "models"},
    "replay": {"errors", "models"},
    "store": {"errors", "models"},
    "instances": {"models", "project", "store"},
    "timing": {"errors", "models", "project", "store", "instances"},
    "pool": {"errors", "models", "project", "timing"},
    "engine": {"errors", "models", "project", "replay", "store", "instances", "timing", "pool"},
    "client": {"errors", "models", "project", "store", "instances", "timing", "engine.rewind_plan", "replay.calls"},
    "check": {"errors", "models", "project", "replay", "store", "timing"},
    "testing": {"errors", "models", "project", "replay", "store", "instances", "timing", "pool", "engine", "client", "check"},
    "pidlock": {"errors", "project"},
    "sdnotify": set(),
    "daemon": {"errors", "models", "project", "store", "timing", "pool", "engine", "pidlock", "sdnotify"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in RUNTIME.rglob("*.py"):
        parts = ["zenaton_runtime", *path.relative_to(RUNTIME).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """The zenaton_runtime modules a file imports at module level (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zenaton_runtime"):
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("zenaton_runtime"))
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_module_belongs_to_a_declared_layer() -> None:
    parts = {_part(m) for m in _modules()} - {""}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, deps in _graph().items():
        part = _part(module)
        for dep in deps:
            target = _part(dep)
            if not target or target == part:
                continue
            allowed = ALLOWED[part]
            if target not in allowed and not any(dep.startswith(f"zenaton_runtime.{a}") for a in allowed):
                wrong.append(f"{module} imports {dep}")
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                return [*path, module, dep]
            if dep not in state and (cycle := visit(dep, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            assert visit(module, []) is None


SDK = RUNTIME.parent / "zenaton"


def test_the_sdk_imports_the_engine_only_lazily() -> None:
    """No module of the SDK (zenaton.testing included) imports zenaton_runtime at module level:
    only inside functions (a plain script's client runtime, the testing kit's names when first
    used) or for type checkers (``if TYPE_CHECKING:``)."""
    wrong = {path.relative_to(SDK.parent).as_posix(): found for path in SDK.rglob("*.py") if (found := _imports(path))}
    assert wrong == {}

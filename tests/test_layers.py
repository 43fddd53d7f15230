"""The package's layer folders: imports point down the layers and never run in a circle.

Layers from the ground up: common < planning < models, report < hsk < training < bench < cli. A module may import
its own folder and any lower layer; `models` and `report` sit side by side and import neither each other.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hskd"
LAYER = {"common": 0, "planning": 1, "models": 2, "report": 2, "hsk": 3, "training": 4, "bench": 5, "cli": 6}
KEPT_PATHS = {"cells", "compression"}  # first import paths of the public API, re-exported from their layers


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix("__init__").rstrip(".")


def imported_modules(path: Path) -> set[str]:
    """The hskd modules `path` imports (`from hskd.common import glue` names the module hskd.common.glue)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hskd":
            base = node.module.removeprefix("hskd").lstrip(".")
            for alias in node.names:
                child = f"{base}.{alias.name}".lstrip(".")
                is_module = (PACKAGE / (child.replace(".", "/") + ".py")).exists()
                found.add(child if is_module else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("hskd.") for alias in node.names if alias.name.startswith("hskd.")}
    return {name for name in found if name}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int | None:
    return LAYER.get(module.split(".")[0])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, imports in graph.items():
        if module in KEPT_PATHS or layer_of(module) is None:
            continue
        for imported in imports:
            same_folder = imported.split(".")[0] == module.split(".")[0]
            if not same_folder and (layer_of(imported) is None or layer_of(imported) >= layer_of(module)):
                bad.append(f"{module} -> {imported}")
    return sorted(bad)


def circles(graph: dict[str, set[str]]) -> list[str]:
    def reaches(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    return sorted(module for module in graph if module in reaches(module))


def test_every_module_sits_in_a_layer_folder():
    loose = [module for module in import_graph() if layer_of(module) is None and module not in KEPT_PATHS | {""}]
    assert loose == []


def test_imports_point_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_checks_see_a_circle_and_an_upward_import():
    graph = {"planning.grid": {"planning.config"}, "planning.config": {"planning.grid", "hsk.store"}}
    assert circles(graph) == ["planning.config", "planning.grid"]
    assert upward_imports(graph) == ["planning.config -> hsk.store"]


@pytest.mark.parametrize(("kept", "home"), [("hskd.cells", "hskd.planning.cells"),
                                            ("hskd.compression", "hskd.hsk.compression")])
def test_the_first_import_paths_still_work(kept, home):
    kept_module, home_module = importlib.import_module(kept), importlib.import_module(home)
    assert kept_module.__all__
    for name in kept_module.__all__:
        assert getattr(kept_module, name) is getattr(home_module, name), name

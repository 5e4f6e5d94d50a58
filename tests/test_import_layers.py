"""No import points up a layer or closes a circle, lazily or not (slarules/architecture.py holds the layers).

Every module's imports are read with `ast`, those inside functions included: a
function-level import runs later, but it still ties the lower module to the
upper one. Imports inside `if TYPE_CHECKING:` are not counted: they never run
(every module with one has `from __future__ import annotations`, so the names
are only annotations), so they can neither load an upper layer nor form an
import cycle; they let a lower module name an upper type in a signature.
The checker itself is tested on a planted package (an upward import, a cycle).
(tests/test_layers.py is the pack layers' test: `extends:`.)
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from slarules.architecture import LAYERS, layer_of


def modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__) for every .py file under root/package."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, path: Path, is_package: bool, known: dict) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import statement `module` runs, at any depth."""
    out: list[tuple[str, int]] = []
    top = module.split(".")[0]

    def target(name: str) -> str:
        while name not in known and "." in name:     # `from pkg.mod import name`: the module, not the name
            name = name.rsplit(".", 1)[0]
        return name

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((target(a.name), node.lineno) for a in node.names if a.name.split(".")[0] == top)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".") if is_package else module.split(".")[:-1]
            if node.level:
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == top:
                for alias in node.names:
                    full = f"{name}.{alias.name}"
                    out.append((full if full in known else target(name), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return [(name, line) for name, line in out if name != module]


def graph(root: Path, package: str) -> tuple[dict[str, list[tuple[str, int]]], dict]:
    known = modules(root, package)
    return {m: imports(m, path, is_package, known) for m, (path, is_package) in known.items()}, known


def upward(edges: dict[str, list[tuple[str, int]]], layer: Callable[[str], int]) -> list[str]:
    """Every import of a module from a higher layer, as `module:line imports target (layer -> layer)`."""
    names = [name for name, _ in LAYERS]
    return [f"{m}:{line} imports {t} ({names[layer(m)]} -> {names[layer(t)]})"
            for m, targets in edges.items() for t, line in targets if layer(t) > layer(m)]


def cycles(edges: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module, or a module importing
    itself), each as its modules sorted; Tarjan's algorithm, iterative."""
    graph_ = {m: sorted({t for t, _ in ts if t in edges}) for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start, children_of_start in graph_.items():
        if start in index:
            continue
        work = [(start, iter(children_of_start))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph_[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_every_module_has_a_layer():
    edges, _ = graph(ROOT, "slarules")
    for module in edges:
        layer_of(module)        # raises, naming the module, when the table does not place it


def test_no_module_imports_from_a_higher_layer():
    edges, _ = graph(ROOT, "slarules")
    found = upward(edges, layer_of)
    assert not found, "imports pointing up (slarules/architecture.py):\n" + "\n".join(found)


def test_no_import_closes_a_circle():
    edges, _ = graph(ROOT, "slarules")
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


# ---- the checker itself, on a planted package --------------------------------------------------

PLANTED = {
    "pkg/__init__.py": "",
    "pkg/low.py": "def f():\n    from .high import g  # a lazy upward import\n    return g\n",
    "pkg/high.py": "from . import low\n",
    "pkg/a.py": "import pkg.b\n",
    "pkg/b.py": "from pkg import c\n",
    "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import g\n"
                "def h():\n    from .a import x\n",
    "pkg/sub/__init__.py": "from ..low import f\n",
}


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, list[tuple[str, int]]]:
    for name, text in PLANTED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return graph(tmp_path, "pkg")[0]


def test_the_checker_finds_a_planted_upward_import_even_inside_a_function(planted):
    order = {"pkg.low": 0, "pkg.sub": 1, "pkg.high": 2}
    found = upward(planted, lambda m: order.get(m, 1))
    assert found == ["pkg.low:2 imports pkg.high (foundation -> output)"]
    assert ("pkg.low", 1) in planted["pkg.sub"]         # a package's relative import resolves from itself


def test_the_checker_finds_a_planted_cycle_and_skips_type_checking_imports(planted):
    assert cycles(planted) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.high", "pkg.low"]]
    assert [t for t, _ in planted["pkg.c"]] == ["pkg.a"]        # not pkg.high: under TYPE_CHECKING only

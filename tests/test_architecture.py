"""Import structure of lsp_server: no import circles, and the pure layers stay protocol- and torch-free.

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count; imports inside functions do
(a lazy import that closes a circle is still a circle to untangle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lsp_server"
PURE_LAYERS = ("analysis", "knowledge", "render")
FORBIDDEN_IN_PURE = ("pygls", "lsprotocol", "torch", "transformer_lens")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _runtime_imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(n) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in type_only]


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Modules of lsp_server that an import statement loads (``from . import x`` names module ``x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
    origin = ".".join(base + ([node.module] if node.module else []))
    return [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]


def _graph() -> dict[str, set[str]]:
    return {m: {t for node in _runtime_imports(p) for t in _targets(m, node) if t in MODULES and t != m}
            for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted(component + [v]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    graph = _graph()
    assert len(graph) > 50  # the scan sees the package
    cycles = _cycles(graph)
    detail = "\n".join(" <-> ".join(c) + ": " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles)
    assert not cycles, "import circles:\n" + detail


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", PURE_LAYERS)
def test_pure_layers_import_no_protocol_or_torch(layer):
    bad = [f"{path.relative_to(ROOT)}: {name}" for path in (ROOT / layer).rglob("*.py") for node in _runtime_imports(path)
           for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
           if name.split(".")[0] in FORBIDDEN_IN_PURE]
    assert not bad, bad


def _loaded_with(module: str, graph: dict[str, set[str]]) -> set[str]:
    """Modules of lsp_server whose code runs when ``module`` is imported: its packages' ``__init__``s
    too, and what all of them import in turn."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parents = [".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1)]
        todo.extend(graph[m] | {p for p in parents if p in graph})
    return seen


def _imports_forbidden(path: Path) -> bool:
    return any(name.split(".")[0] in FORBIDDEN_IN_PURE for node in _runtime_imports(path)
               for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]))


@pytest.mark.parametrize("layer", PURE_LAYERS)
def test_pure_layers_load_no_module_that_imports_protocol_or_torch(layer):
    """The modules a pure layer borrows from elsewhere (e.g. render reads sweeps/kinds.py and spec.py) must
    be pure too, and so must their packages' ``__init__``s."""
    graph = _graph()
    bad = {f"{m} loads {other}" for m in MODULES if m.startswith(f"lsp_server.{layer}")
           for other in _loaded_with(m, graph) if _imports_forbidden(MODULES[other])}
    assert not bad, sorted(bad)


def test_the_transitive_check_sees_a_package_init():
    graph = {"lsp_server.render.x": {"lsp_server.sweeps.kinds"}, "lsp_server.sweeps.kinds": set(),
             "lsp_server.sweeps": {"lsp_server.sweeps.lsp"}, "lsp_server.sweeps.lsp": set(), "lsp_server": set()}
    assert "lsp_server.sweeps.lsp" in _loaded_with("lsp_server.render.x", graph)

"""Dependencies inside sla_engine point one way (docs/ARCHITECTURE.md): no import circle, the
pure core imports nothing of the rest, and only the entry points (api, cli) reach the
composition root.

Read from the source with `ast`, nothing is imported. Every import counts, also one inside a
function (a lazy import hides a circle from Python, not from the reader); imports under
`if TYPE_CHECKING:` do not (they never run). `from package import name` depends on the
submodule `package.name` when there is one, else on the package itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sla_engine"
ROOT = PACKAGE.name


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str, path: Path, names: set[str]) -> set[str]:
    """The sla_engine modules that module `name` imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in names else base)
    return {m for m in found if m in names and m != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    names = set(found)
    return {name: imports_of(name, path, names) for name, path in found.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others."""
    reach = {node: reachable(graph, node) for node in graph}
    groups = {
        tuple(sorted(m for m in reach[node] if node in reach[m]))
        for node in graph
        if node in reach[node]
    }
    return sorted(list(group) for group in groups)


def test_the_graph_sees_the_package() -> None:
    graph = import_graph()
    assert f"{ROOT}.composition" in graph
    assert f"{ROOT}.credits.credit_service" in graph[f"{ROOT}.composition"]
    assert f"{ROOT}.core.times" in graph[f"{ROOT}.credits.credit_service"]
    assert f"{ROOT}.credits.store" in graph[f"{ROOT}.credits.housekeeping"]


def test_the_checker_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_inside_sla_engine() -> None:
    graph = import_graph()
    found = cycles(graph)
    detail = "; ".join(
        " -> ".join(f"{m} ({', '.join(sorted(graph[m] & set(c)))})" for m in c) for c in found
    )
    assert not found, f"import circles (module (what it imports in the circle)): {detail}"


def part(module: str) -> str:
    """The top-level part of a module: `sla_engine.credits.store` -> `credits`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def edges_across(graph: dict[str, set[str]]) -> set[tuple[str, str, str]]:
    """(module, what it imports, the imported module's part) across parts."""
    return {(m, t, part(t)) for m, targets in graph.items() for t in targets if part(m) != part(t)}


def test_the_pure_core_imports_only_itself_and_the_error_types() -> None:
    outside = sorted(
        (m, t) for m, t, p in edges_across(import_graph()) if part(m) == "core" and p != "errors"
    )
    assert not outside, f"core modules importing the rest of the engine: {outside}"


ENTRY_POINTS = {"api", "cli"}


def test_only_the_entry_points_reach_the_composition_root_and_each_other() -> None:
    upward = sorted(
        (m, t)
        for m, t, p in edges_across(import_graph())
        if p in ENTRY_POINTS | {"composition"} and part(m) not in ENTRY_POINTS
    )
    assert not upward, f"imports of api, cli or composition from below them: {upward}"

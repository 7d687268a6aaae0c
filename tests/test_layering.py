"""The import rules of the house: surfaces -> actors -> meerkat, never upwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name.split(".")[0]) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package, forbidden", [("meerkat", {"actors", "surfaces"}), ("actors", {"surfaces"})])
def test_imports_point_down_only(package, forbidden):
    offenders = sorted((path, mod) for path, mod in _imports(package) if mod in forbidden)
    assert offenders == []


def test_domain_does_not_pull_heavy_dependencies_at_import():
    """Importing the host must not import provider SDKs, quart or mcp (CLI start-up time)."""
    import subprocess
    import sys

    code = ("import sys, actors, meerkat; "
            "print(sorted(m for m in ('openai', 'anthropic', 'quart', 'mcp', 'hypercorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _actor_module_imports() -> dict[str, set[str]]:
    """For each module of ``actors``, the ``actors`` modules it imports (TYPE_CHECKING blocks and
    imports inside functions included: a cycle of annotations is still a tangle)."""
    graph: dict[str, set[str]] = {}
    package = ROOT / "actors"
    names = {path.stem for path in package.glob("*.py")} - {"__init__"}
    for path in package.glob("*.py"):
        if path.stem == "__init__":
            continue
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    found.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import x
                    found.update(alias.name for alias in node.names)
                elif node.level == 0 and node.module and node.module.startswith("actors."):
                    found.add(node.module.split(".")[1])
                elif node.level == 0 and node.module == "actors":
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("actors."))
        graph[path.stem] = (found & names) - {path.stem}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_actor_modules_import_each_other_without_cycles():
    """actors/ modules form layers: no import cycle, not even one through TYPE_CHECKING imports."""
    graph = _actor_module_imports()
    assert {"session", "realm", "live", "coordination"} <= set(graph)  # the walk sees the package
    assert _cycles(graph) == []

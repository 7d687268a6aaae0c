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

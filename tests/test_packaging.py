"""Dependencies: compatible ranges in pyproject.toml, the exact tested set in constraints.txt."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = [project["dependencies"], *project["optional-dependencies"].values()]
    return [Requirement(text) for group in groups for text in group]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
            assert match, f"constraints.txt: not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_pyproject_declares_ranges_not_exact_pins():
    for requirement in _declared():
        assert not any(spec.operator in ("==", "===") for spec in requirement.specifier), requirement
        assert any(spec.operator in (">=", "~=") for spec in requirement.specifier), \
            f"{requirement}: give the lowest tested version"


def test_constraints_pin_every_dependency_inside_its_range():
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_the_tested_environment_is_the_pinned_one():
    """make test installs with -c constraints.txt: what runs here is exactly the pinned set."""
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # pinned for an optional extra this environment does not install
        assert installed == version, f"{name}: installed {installed}, constraints.txt pins {version}"

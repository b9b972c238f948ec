"""The pinned requirements files and pyproject.toml's bounds agree."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO


def _pins(name: str) -> dict[str, str]:
    """{package: pinned version} of a requirements file and the files it includes with -r."""
    pins = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _pins(line[3:].strip())
        elif line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{name}: {line} is not pinned"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_every_dependency_is_pinned_within_its_bounds():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    extras = project["optional-dependencies"]
    pins, test_pins = _pins("requirements.txt"), _pins("requirements-test.txt")
    for requirements, pinned in ((runtime, pins), ([Requirement(r) for r in extras["data"]], pins),
                                 ([Requirement(r) for r in extras["lpips"]], pins),
                                 ([Requirement(r) for r in extras["test"]], test_pins)):
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement.name} has bounds but no pin"
            assert str(requirement.specifier), f"{requirement.name} has no bounds"
            assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])
    # the runtime file holds no test tools, and the test file everything the runtime one does
    assert not {"pytest", "ruff"} & set(pins) and set(pins) <= set(test_pins)

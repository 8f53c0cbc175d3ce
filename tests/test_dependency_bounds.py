"""pyproject.toml allows no dependency version with a known advisory we rely on not having (issue 15, #14).

* Jinja2 < 3.1.6: sandbox escapes (CVE-2024-56201 and CVE-2024-56326 fixed in 3.1.5, CVE-2025-27516 in
  3.1.6); answer files are rendered in the sandbox.
* waitress < 3.0.1: request smuggling with request lookahead and a busy loop on half-open sockets
  (CVE-2024-49768, CVE-2024-49769); waitress is the HTTP server facing the install network.
* Werkzeug < 3.0.6: a multipart body that exhausts memory or CPU (CVE-2024-49767); Flask only asks for
  Werkzeug >= 3.0.0, so netboot declares it itself to carry the bound.

Each is checked twice: the declared specifier must refuse the vulnerable versions and accept the fixed one,
and the installed version (what the tests ran against) must be at least the fixed one.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

#: distribution -> (first fixed version, versions it must refuse)
BOUNDS = {
    "jinja2": ("3.1.6", ("3.1.5", "3.1.4", "3.1.0", "3.0.3")),
    "waitress": ("3.0.1", ("3.0.0", "2.1.2")),
    "werkzeug": ("3.0.6", ("3.0.5", "3.0.0", "2.3.8")),
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {req.name.lower(): req for req in requirements}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_declared_lower_bound_is_past_the_advisory(name: str) -> None:
    fixed, vulnerable = BOUNDS[name]
    requirements = declared()
    assert name in requirements, f"{name} is not declared in {PYPROJECT.name} [project] dependencies"
    spec = requirements[name].specifier
    assert Version(fixed) in spec, f"{name}{spec} refuses the fixed {fixed}"
    for old in vulnerable:
        assert Version(old) not in spec, f"{name}{spec} allows {old}"


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_installed_version_meets_the_bound(name: str) -> None:
    fixed, _vulnerable = BOUNDS[name]
    installed = Version(version(name))
    assert installed >= Version(fixed), f"{name} {installed} installed, {fixed} or later needed"
    assert installed in declared()[name].specifier

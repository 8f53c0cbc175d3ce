"""Fixtures for the render tests: the sample profiles, fixed server facts, and a profile-tree builder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filetree import write_tree

from netboot.profiles import ProfileSet, load_profiles
from netboot.render import ServerFacts

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
GOLDEN = REPO / "tests" / "fixtures" / "render" / "golden"
SAMPLE_PROFILES = (
    "rocky9-kickstart",
    "solaris10-jumpstart",
    "debian12-preseed",
    "ubuntu24-autoinstall",
    "opensuse-autoyast",
    "local",
)


def fixed_facts(**changes: object) -> ServerFacts:
    """Server facts that do not depend on this machine (no local boot files are seen)."""
    values: dict[str, object] = {
        "server_ip": "10.0.0.1",
        "http_port": 8080,
        "domain": "example.test",
        "file_exists": lambda path: False,
    }
    values.update(changes)
    return ServerFacts(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sample_set() -> ProfileSet:
    return load_profiles(PROFILES)


@pytest.fixture
def facts() -> ServerFacts:
    return fixed_facts()


TreeBuilder = Callable[[dict[str, str]], Path]


@pytest.fixture
def tree(tmp_path: Path) -> TreeBuilder:
    """Write ``{relative path: text}`` under a new profiles folder (one per call) and return it."""

    count = iter(range(1000))

    def build(files: dict[str, str]) -> Path:
        root = tmp_path / f"tree{next(count)}" / "profiles"
        root.mkdir(parents=True)
        return write_tree(root, files)

    return build


def require_validators() -> bool:
    """Missing validator tools fail the run in CI (or when asked), and skip elsewhere."""
    return bool(os.environ.get("CI") or os.environ.get("NETBOOT_REQUIRE_VALIDATORS"))

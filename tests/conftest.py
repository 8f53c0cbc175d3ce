"""Shared fixtures: private networks (namespaces) and a netboot daemon inside one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netlab import Lab

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh bridge namespace for this test; removed, with everything in it, afterwards."""
    with Lab() as made:
        yield made


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A per-test directory kept after the run (logs, captures, screenshots) under artifacts/."""
    root = Path(__file__).resolve().parent.parent / "artifacts"
    path = root / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    return path

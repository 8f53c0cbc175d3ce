"""Shared fixtures: private networks (namespaces) and a netboot daemon inside one."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netlab import Lab

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A CI timeout or `kill` sends SIGTERM: turn it into an interrupt so fixtures still tear down the
# namespaces, daemons and VMs they created.
signal.signal(signal.SIGTERM, _interrupt)


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
    shutil.rmtree(path, ignore_errors=True)  # a test starts from nothing, also when run twice
    path.mkdir(parents=True)
    return path

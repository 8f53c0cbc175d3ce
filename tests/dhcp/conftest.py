"""Fixtures of the DHCP tests: a real SQLite store in the test's directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.store import Store, open_store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The store's database file, for a test that reads it with sqlite3 beside the store."""
    return tmp_path / "netboot.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    made = open_store(f"sqlite:///{db}")
    yield made
    made.close()

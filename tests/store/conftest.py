"""Store fixtures: a database file of the release before migrations, copied so a test may change it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

RELEASE_DB = Path(__file__).resolve().parent.parent / "fixtures" / "store" / "release-0.1.db"


@pytest.fixture
def release_db(tmp_path: Path) -> Path:
    """A copy of ``tests/fixtures/store/release-0.1.db`` (made by ``make_release_db.py`` there)."""
    path = tmp_path / "netboot.db"
    shutil.copyfile(RELEASE_DB, path)
    return path


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where a test's database file goes."""
    return tmp_path / "netboot.db"


def dump(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (but alembic's), as dicts, in primary-key order: what "no loss" compares."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            if r[0] != "alembic_version"
        ]
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}
    finally:
        conn.close()


def table_sql(path: Path) -> dict[str, str]:
    """The CREATE statement of each table and index (but alembic's), by name."""
    conn = sqlite3.connect(path)
    try:
        return {
            name: sql
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
            if name != "alembic_version"
        }
    finally:
        conn.close()

"""``netboot db status`` / ``netboot db upgrade`` on a fresh data dir, on release 0.1.0's database, and on a
database a newer netboot made."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from netboot.cli import main
from netboot.store.migrate import head_revision

RELEASE_DB = Path(__file__).resolve().parents[1] / "fixtures" / "store" / "release-0.1.db"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_fresh_data_dir_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    code, out = run("db", "status", "--data-dir", str(tmp_path))
    assert code == 0 and "none (empty database)" in out
    code, out = run("db", "upgrade", "--data-dir", str(tmp_path))
    assert code == 0 and f"created at revision {head_revision()}" in out
    code, out = run("db", "upgrade", "--data-dir", str(tmp_path))
    assert code == 0 and "already at revision" in out
    code, out = run("db", "status", "--data-dir", str(tmp_path))
    assert f"database revision: {head_revision()};" in out


def test_release_database_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    shutil.copy(RELEASE_DB, tmp_path / "netboot.db")
    with sqlite3.connect(tmp_path / "netboot.db") as conn:
        before = conn.execute("SELECT mac, profile, state FROM systems ORDER BY mac").fetchall()
    assert before, "the fixture holds systems"
    code, out = run("db", "status", "--data-dir", str(tmp_path))
    assert code == 0 and "made by netboot 0.1.0" in out
    code, out = run("db", "upgrade", "--data-dir", str(tmp_path))
    assert code == 0 and f"to {head_revision()}" in out, out
    with sqlite3.connect(tmp_path / "netboot.db") as conn:
        after = conn.execute("SELECT mac, profile, state FROM systems ORDER BY mac").fetchall()
        local_boot = conn.execute("SELECT DISTINCT local_boot FROM systems").fetchall()
    assert after == before and local_boot == [(None,)]


def test_a_newer_schema_is_refused_unchanged(tmp_path: Path) -> None:
    assert run("db", "upgrade", "--data-dir", str(tmp_path))[0] == 0
    with sqlite3.connect(tmp_path / "netboot.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    code, out = run("db", "upgrade", "--data-dir", str(tmp_path))
    assert code == 1 and "9999" in out, out
    with sqlite3.connect(tmp_path / "netboot.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]

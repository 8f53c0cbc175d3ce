"""``netboot system add/set --local-boot`` and what ``netboot render`` says of a machine DHCP skips."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from netboot.cli import main

MAC = "52:54:00:00:10:01"


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.stdout, result.stderr


def test_local_boot_is_set_changed_and_inherited(tmp_path: Path) -> None:
    assert run(tmp_path, "system", "add", MAC, "-p", "debian12-preseed", "--local-boot", "exit")[0] == 0
    assert "local_boot: exit" in run(tmp_path, "system", "show", MAC)[1]
    code, out, _ = run(tmp_path, "system", "set", MAC, "--state", "installed")
    assert code == 0
    code, out, err = run(tmp_path, "render", MAC)
    assert code == 0 and "exit" in out and "no boot file" not in err  # the iPXE hand-back it asked for
    assert run(tmp_path, "system", "set", MAC, "--local-boot", "inherit")[0] == 0
    assert "local_boot: -" in run(tmp_path, "system", "show", MAC)[1]
    code, out, err = run(tmp_path, "render", MAC)
    assert code == 0 and "gets no boot file from DHCP" in err  # inherited skip: DHCP stays silent


def test_a_bad_local_boot_is_refused(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "system", "add", MAC, "-p", "debian12-preseed", "--local-boot", "reboot")
    assert code == 2 and "reboot" in err

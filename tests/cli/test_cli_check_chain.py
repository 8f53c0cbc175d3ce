"""``netboot check`` says what the boot chains lack here: the Secure Boot files where anything chooses
``shim-grub`` (an error, exit 1, naming the files, the apt packages and who chose it), MokManager and
fallback (a warning), UEFI HTTP Boot without mtools (a warning), boot files GRUB cannot fetch, missing
iPXE loaders.

The loaders are looked up in a fake system root (``netboot.loaders.SYSTEM_ROOT`` pointed at tmp_path), so
the answers do not depend on what this machine has installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from filetree import write_tree

from netboot import loaders
from netboot.cli import main
from netboot.loaders import SHIM_FILES

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
KS = "kind: kickstart\n"
MAC = "52:54:00:00:20:01"


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty system root with Debian's iPXE only: no Secure Boot file until a test installs one."""
    root = tmp_path / "root"
    (root / "usr/lib/ipxe").mkdir(parents=True)
    for name in ("undionly.kpxe", "ipxe.efi"):
        (root / "usr/lib/ipxe" / name).write_bytes(b"ipxe")
    monkeypatch.setattr(loaders, "SYSTEM_ROOT", root)
    return root


def install(root: Path, *served: str) -> None:
    """Put Debian's files of ``served`` (the names shim asks for) under ``root``, as the packages do."""
    for name in served:
        path = root / SHIM_FILES[name][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"efi")


def setup(tmp_path: Path, profiles: dict[str, str], config: str = "") -> Path:
    """A profiles folder (with the sample snippets) and a config naming it; returns the config file."""
    root = tmp_path / "profiles"
    shutil.copytree(PROFILES / "_snippets", root / "_snippets")
    write_tree(root, profiles)
    file = tmp_path / "netboot.yaml"
    file.write_text(f"data-dir: {tmp_path / 'data'}\nprofiles-dir: {root}\n{config}")
    return file


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


SECURE = {
    "secure/profile.yaml": KS + "boot_chain: shim-grub\nkernel: vmlinuz\ninitrd: [initrd.img]\n",
    "secure/ks.cfg.j2": "text\n",
    "secure/files/vmlinuz": "k",
    "secure/files/initrd.img": "i",
}
PLAIN = {
    "plain/profile.yaml": KS + "kernel: vmlinuz\ninitrd: [initrd.img]\n",
    "plain/ks.cfg.j2": "text\n",
    "plain/files/vmlinuz": "k",
    "plain/files/initrd.img": "i",
}


def test_a_shim_grub_profile_without_shim_is_an_error(tmp_path: Path, fake_root: Path) -> None:
    config = setup(tmp_path, {**SECURE, **PLAIN})
    result = cli(config, "check")
    assert result.exit_code == 1, result.output
    profile = tmp_path / "profiles/secure/profile.yaml"
    assert (f"{profile}: error: boot_chain: shim-grub, but shimx64.efi and grubx64.efi not found (apt-get "
            "install grub-efi-amd64-signed shim-signed, or put shimx64.efi and grubx64.efi in loaders.dir): "
            "its UEFI x64 PXE machines get no boot file\n") in result.stderr
    assert "plain/profile.yaml: error" not in result.stderr
    # the warnings go to stdout, with the count in the summary
    assert "(shim-grub chain): warning: mmx64.efi, fbx64.efi not found (apt-get install " \
           "shim-helpers-amd64-signed)" in result.stdout
    assert "HTTP Boot" not in result.output  # the image's mtools are installed; shim and GRUB are the error
    assert ": 1 errors, 1 warnings" in result.stdout


def test_with_shim_and_grub_it_passes_and_warns(tmp_path: Path, fake_root: Path) -> None:
    install(fake_root, "shimx64.efi", "grubx64.efi")
    config = setup(tmp_path, {**SECURE, **PLAIN})
    result = cli(config, "check")
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr
    assert "mmx64.efi, fbx64.efi not found" in result.stdout and "warewulf#2238" in result.stdout
    install(fake_root, "mmx64.efi", "fbx64.efi")
    result = cli(config, "check", "--quiet")
    assert result.exit_code == 0 and "mmx64.efi" not in result.output and "warning" not in result.output


def test_nothing_on_the_chain_says_nothing_of_it(tmp_path: Path, fake_root: Path) -> None:
    config = setup(tmp_path, PLAIN)
    result = cli(config, "check")
    assert result.exit_code == 0, result.output
    assert "shim" not in result.output and ": 0 errors, 0 warnings" in result.stdout


def test_a_registered_machine_on_the_chain(tmp_path: Path, fake_root: Path) -> None:
    config = setup(tmp_path, PLAIN)
    added = cli(config, "system", "add", MAC, "-p", "plain", "--boot-chain", "shim-grub")
    assert added.exit_code == 0, added.output
    result = cli(config, "check")
    assert result.exit_code == 1, result.output
    assert (f"(systems): error: 1 registered machine(s) on the shim-grub chain get no boot file by UEFI PXE: "
            f"{MAC} (shimx64.efi and grubx64.efi not found") in result.stderr


def test_the_sites_boot_chain(tmp_path: Path, fake_root: Path) -> None:
    install(fake_root, "grubx64.efi")
    config = setup(tmp_path, PLAIN, "boot-chain: shim-grub\n")
    result = cli(config, "check")
    assert result.exit_code == 1, result.output
    assert (f"{config}: error: boot-chain: shim-grub, but shimx64.efi not found (apt-get install "
            "shim-signed, or put shimx64.efi in loaders.dir)") in result.stderr


def test_loaders_dir_by_served_name_is_enough(tmp_path: Path, fake_root: Path) -> None:
    mine = tmp_path / "signed"
    mine.mkdir()
    (mine / "shimx64.efi").write_bytes(b"efi")
    (mine / "grubx64.efi").write_bytes(b"efi")
    config = setup(tmp_path, SECURE, f"loaders:\n  dir: {mine}\n")
    assert cli(config, "check").exit_code == 0


def test_a_kernel_only_at_an_https_url_on_the_chain(tmp_path: Path, fake_root: Path) -> None:
    install(fake_root, *SHIM_FILES)
    url = "https://mirror.example/os/vmlinuz"
    config = setup(tmp_path, {
        "web/profile.yaml": KS + f"boot_chain: shim-grub\nkernel: {{url: '{url}'}}\n",
        "web/ks.cfg.j2": "text\n",
    })
    result = cli(config, "check")
    assert result.exit_code == 1, result.output
    web = tmp_path / "profiles/web/profile.yaml"
    assert f"{web}: error: kernel: only {url} on the shim-grub chain, and GRUB cannot fetch https" \
        in result.stderr
    # the same profile on the iPXE chain is fine: iPXE fetches https itself
    (tmp_path / "profiles/web/profile.yaml").write_text(KS + f"kernel: {{url: '{url}'}}\n")
    assert cli(config, "check").exit_code == 0


def test_missing_ipxe_loaders_are_warnings(tmp_path: Path, fake_root: Path) -> None:
    (fake_root / "usr/lib/ipxe/undionly.kpxe").unlink()
    config = setup(tmp_path, PLAIN)
    result = cli(config, "check")
    assert result.exit_code == 0, result.output
    expected = "(loaders): warning: bios: undionly.kpxe not found in loaders.dir or /usr/lib/ipxe"
    assert expected in result.stdout

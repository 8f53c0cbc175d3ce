"""The top-level Vagrantfile is valid for Vagrant with the libvirt provider (nothing is brought up here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VAGRANTFILE = ROOT / "Vagrantfile"


def vagrant(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # its own VAGRANT_HOME and working directory: validating leaves nothing in the checkout or in ~
    env = {
        **os.environ,
        "VAGRANT_HOME": str(workdir / "vagrant.d"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
    }
    return subprocess.run(
        ["vagrant", *args], cwd=workdir, capture_output=True, text=True, timeout=120, env=env
    )


def test_vagrantfile_validates_with_the_libvirt_provider(tmp_path: Path) -> None:
    assert shutil.which("vagrant"), "make test installs vagrant and vagrant-libvirt (scripts/install-deps.sh)"
    shutil.copy(VAGRANTFILE, tmp_path / "Vagrantfile")
    result = vagrant(tmp_path, "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vagrantfile validated successfully" in result.stdout

    # the check is real: with the plugin installed, a wrong libvirt option fails validation
    broken = VAGRANTFILE.read_text().replace("lv.cpus = 2", "lv.cpus = 2\n      lv.no_such_option = 1")
    (tmp_path / "Vagrantfile").write_text(broken)
    result = vagrant(tmp_path, "validate")
    assert result.returncode != 0 and "no_such_option" in result.stdout + result.stderr


def test_the_server_provisioning_script_is_valid_shell(tmp_path: Path) -> None:
    assert shutil.which("ruby"), "vagrant brings ruby"
    script = subprocess.run(
        [
            "ruby",
            "-e",
            "module Vagrant; def self.configure(*); end; end; load ARGV[0]; print SERVER_PROVISION",
            str(VAGRANTFILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (tmp_path / "provision.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "provision.sh")], check=True, timeout=30)
    assert "netboot serve --config /etc/netboot/netboot.yaml" in script
    for mac in ("52:54:00:4e:42:b1", "52:54:00:4e:42:b2"):
        assert mac in script

"""End to end: a registered MAC boots the Debian 12 netboot installer from netboot, the installer fetches
its preseed, the completion callback ends install mode, and the next boot of the same VM goes to the local
disk. An unregistered VM booting meanwhile shows up as discovered.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from netlab import Lab, stop, wait_for
from served import start_netboot

from netboot.qemu import VmSpec, command, missing_firmware

from .vmtools import as_machine, cli, events, install_network, phases, system

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

DEBIAN_INSTALLER = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux")


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_debian_installer_fetches_preseed_then_next_boot_is_local(
    lab: Lab, tmp_path: Path, artifacts: Path, firmware: str
) -> None:
    assert DEBIAN_INSTALLER.exists(), "make test installs debian-installer-12-netboot-amd64"
    assert not missing_firmware(firmware)
    srv = lab.host("srv", 1)
    cli_ns = lab.host("cli", 9)
    served = start_netboot(lab, srv, artifacts, config=install_network(lab))
    mac = "52:54:00:de:b1:01" if firmware == "bios" else "52:54:00:de:b1:02"
    stranger = "52:54:00:de:b1:99"
    cli(served, "system", "add", mac, "--profile", "debian12-preseed", "--hostname", f"deb-{firmware}",
        "--var", "kernel_args=console=ttyS0")  # the installer's console goes to serial.log
    token = system(served, mac)["token"]
    assert isinstance(token, str) and token

    vm = VmSpec(name=f"install-{firmware}", mac=mac, tap=lab.tap(), firmware=firmware, memory_mb=1024,
                serial_log=artifacts / "serial.log", state_dir=tmp_path)
    unknown = VmSpec(name="stranger", mac=stranger, tap=lab.tap(), firmware="bios", memory_mb=128)
    started = time.monotonic()
    installer = lab.bridge.spawn(command(vm), log=artifacts / "qemu.log")
    other = lab.bridge.spawn(command(unknown), log=artifacts / "qemu-stranger.log")

    # the stranger, booting meanwhile, is recorded as discovered and sent to its local disk at DHCP time:
    # its lease comes without a boot file, so its firmware moves on (no iPXE, no script)
    wait_for(lambda: any(s["mac"] == stranger and s["state"] == "discovered"
                         for s in json.loads(cli(served, "system", "list", "--json"))), 90, interval=2,
             what="the unknown VM to be discovered")
    def stranger_sent_home() -> bool:
        lines = (x.partition("netboot.dhcp: ")[2] for x in served.log_text().splitlines())
        return any(line.startswith(stranger) and "no boot file (unknown machine: local boot" in line
                   for line in lines)

    wait_for(stranger_sent_home, 30, what="the unknown VM's lease without a boot file")
    stop(other)  # two TCG guests on two cores slow the installer down a lot
    try:
        wait_for(lambda: "answer-file" in phases(served, mac), 420, interval=2, what="the preseed fetch")
    except TimeoutError:
        raise AssertionError(f"installer never fetched its preseed:\n{served.log_text()[-4000:]}") from None
    (artifacts / "elapsed.txt").write_text(f"preseed fetched after {time.monotonic() - started:.0f} s\n")
    seen = phases(served, mac)
    assert seen.index("dhcp") < seen.index("boot-script") < seen.index("answer-file"), seen
    log = served.log_text()
    assert f"{mac} (" in log and "answer file preseed.cfg of debian12-preseed" in log
    summaries = [str(e["summary"]) for e in events(served, mac)]
    assert "file debian12-preseed/debian-installer/amd64/linux" in summaries  # kernel from netboot's /files


    # a neighbour on the segment that learned the token cannot use it: not from the machine's address
    def status(url: str) -> str:
        return cli_ns.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url, timeout=30).stdout

    assert status(f"{served.http}/answer/{mac}/preseed.cfg?token={token}") == "403"
    assert status(f"{served.http}/done/{mac}?token={token}") == "403"
    # what the preseed's late_command does, from the machine's own address: call the completion URL.
    # The VM is stopped and the test host takes its MAC and address over, playing the installed machine
    # (the server's ARP entry for the address names that MAC).
    vm_ip = next(str(e["client_ip"]) for e in events(served, mac) if e["phase"] == "answer-file")
    stop(installer)
    with as_machine(lab, cli_ns, mac, vm_ip):  # given back after: the VM boots again with its MAC
        done = cli_ns.run("curl", "-fsS", "--interface", vm_ip, f"{served.http}/done/{mac}?token={token}",
                          timeout=30)
        assert "next boot is local" in done.stdout
        after = system(served, mac)
        assert after["state"] == "installed" and after["token"] is None
        refused = cli_ns.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", vm_ip,
                             f"{served.http}/answer/{mac}/preseed.cfg?token={token}", timeout=30)
        assert refused.stdout == "403"

    again = lab.bridge.spawn(command(vm), log=artifacts / "qemu-second-boot.log")
    try:
        served.wait_log(f"{mac} ({lab.net}.", 10)
        wait_for(lambda: "state installed: local boot" in served.log_text().split("install of debian12")[-1],
                 180, interval=2, what="the second boot's lease without a boot file")
    finally:
        stop(again)
    second = served.log_text().split("install of debian12")[-1]
    assert f"{mac} ({lab.net}." in second and "no boot file (state installed" in second
    assert ": ipxe -> " not in second  # no iPXE detour: no boot script was served

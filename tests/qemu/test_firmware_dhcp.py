"""Real firmware under QEMU (TCG) reaches netboot's per-MAC iPXE script, in full and in proxy mode.

SeaBIOS with QEMU's iPXE e1000 ROM, and OVMF with ``virtio-net-pci,romfile=`` (OVMF's own PXE client,
which then TFTPs ``ipxe.efi`` from netboot). In proxy mode dnsmasq is the network's DHCP server.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from netlab import Lab, wait_for_log
from served import start_dnsmasq, start_netboot

from netboot.qemu import VmSpec, command, missing_firmware

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

SLOWCLIENTS = Path(__file__).resolve().parent.parent / "slowclients.py"


@pytest.mark.parametrize("mode", ["full", "proxy"])
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_firmware_reaches_boot_script(
    lab: Lab, tmp_path: Path, artifacts: Path, firmware: str, mode: str
) -> None:
    assert not missing_firmware(firmware), f"make test installs {missing_firmware(firmware)}"
    srv = lab.host("srv", 1)
    # an unknown VM: with the default `unknown-default: local` it would get no boot file at all (its
    # firmware goes to its disk, see test_local_boot.py); the menu gives it the loader and the script
    menu = "unknown-default: menu\n"
    if mode == "proxy":
        start_dnsmasq(lab, tmp_path, artifacts / "dnsmasq.log")
        served = start_netboot(lab, srv, artifacts, "--dhcp-mode", "proxy", config=menu)
    else:
        served = start_netboot(
            lab, srv, artifacts, "--dhcp-mode", "full", "--dhcp-range", f"{lab.ip(100)}-{lab.ip(110)}",
            config=menu,
        )
    mac = "52:54:00:5e:00:01" if firmware == "bios" else "52:54:00:5e:00:02"
    spec = VmSpec(
        name=f"{firmware}-{mode}",
        mac=mac,
        tap=lab.tap(),
        firmware=firmware,
        memory_mb=256,
        serial_log=artifacts / "serial.log",
        state_dir=tmp_path,
    )
    slow_log = artifacts / "slowclients.log"
    if firmware == "bios" and mode == "full":
        # issue 15: 200 slow clients hold connections to netboot's HTTP while the machine boots (waitress's
        # old defaults, 100 connections and a 120 s timeout, let them starve every booting machine)
        neighbour = lab.host("slow", 50)
        neighbour.spawn(
            [sys.executable, str(SLOWCLIENTS), served.ip, str(served.http_port), "200", "150"], log=slow_log
        )
        wait_for_log(slow_log, "open 200", 30)
    started = time.monotonic()
    lab.bridge.spawn(command(spec), log=artifacts / "qemu.log")
    try:
        log = wait_for_log(served.log, f"{mac} ({lab.net}.", 120)
        log = served.wait_log(": ipxe -> ", 120)
    except TimeoutError:
        raise AssertionError(f"no boot.ipxe request; netboot log:\n{served.log_text()}") from None
    elapsed = time.monotonic() - started
    (artifacts / "elapsed.txt").write_text(f"{elapsed:.1f}\n")
    assert f"{mac} (" in log and ": ipxe -> " in log
    if firmware == "uefi":
        assert "ipxe.efi complete" in log  # OVMF fetched iPXE over netboot's TFTP
    if slow_log.exists():
        held = slow_log.read_text().splitlines()
        assert held[-1] == "still open 200", held[-3:]  # all still connected when the script was served
        assert not any(line.startswith("refusing") for line in held)  # ... from their own namespace
    if mode == "proxy":
        assert "NAK" not in log and " to 10." not in log.split("netboot ready")[1].split("boot.ipxe")[0]

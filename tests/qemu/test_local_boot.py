"""A registered machine whose next boot is local gets no boot file from netboot, and its firmware falls
through to the next boot device: SeaBIOS (iPXE ROM) and OVMF (its own PXE client), in proxy mode beside
dnsmasq and in full mode; and, for comparison, the iPXE hand-back (``--local-boot auto``, the behaviour
before ``skip`` became the default) on BIOS.

The VM's second boot device is a disk that proves it was reached: its boot sector (BIOS) or
``\\EFI\\BOOT\\BOOTX64.EFI`` (UEFI) prints a marker on the serial port (:mod:`bootdisk`). What netboot
sent is read from a capture on the VM's own tap, decoded by scapy, independently of netboot's log: with
``skip``, netboot sends that MAC nothing at all in proxy mode and a lease without a boot file in full
mode, and the VM asks nobody for a TFTP file or an HTTP boot script. The artifacts' ``elapsed.txt`` has
the seconds from VM start to each milestone of the console.

What the times are made of (TCG, measured): SeaBIOS's iPXE ROM waits about 16 s for an IPv6 router that
the lab does not have before it looks at its DHCP answer, in every variant; without a boot file it then
shows its Ctrl-B prompt for 2 s before handing back to the BIOS, where the hand-back ``sanboot``s the disk
at once (skip about 20.6 s, hand-back about 18.6 s). OVMF's PXE client, given no boot file, waits out the
PXE DHCP schedule (4 + 8 + 16 + 32 s) before it gives up on the option, and OVMF has four network options
per NIC (PXEv4, PXEv6, HTTPv4, HTTPv6) before the disk: about 68 s to leave PXEv4 and 255 s to the disk.
The hand-back never reaches the disk under OVMF here: ``ipxe.efi`` (Debian's 1.0.0+git-20190125) hangs
after the script's ``exit``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from netlab import Lab, Netns, stop, wait_for_log
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import rdpcap
from served import Served, start_dnsmasq, start_netboot

from netboot.qemu import VmSpec, command, missing_firmware

from .bootdisk import disk_args
from .vmtools import Console, cli, events

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

MARKER = "NETBOOT-TEST: LOCAL DISK REACHED"
DHCP_PORTS = (67, 68, 4011)
#: console text that shows the firmware tried the NIC first, and (UEFI) gave up on its PXEv4 option
NIC_TRIED = {"bios": "Configuring (net0 ", "uefi": ">>Start PXE over IPv4"}
PXE4_LEFT = {"uefi": "BdsDxe: failed to load Boot"}  # the first option to fail is the NIC's PXEv4
#: OVMF gives every one of its four network boot options a full DHCP schedule before the disk
REACH_DISK_WITHIN = {"bios": 120.0, "uefi": 420.0}


def start_capture(ns: Netns, interface: str, pcap: Path) -> subprocess.Popen[bytes]:
    """tcpdump on ``interface`` (the VM's tap: all the VM sends and receives), ready when it says so."""
    log = pcap.with_suffix(".log")
    # --immediate-mode -U: each packet written as it arrives, none left in a buffer at SIGTERM;
    # -Z root: tcpdump would otherwise drop to its own user and lose write access to artifacts/
    proc = ns.spawn(["tcpdump", "-i", interface, "-n", "--immediate-mode", "-U", "-Z", "root",
                     "-w", str(pcap)], log=log)
    wait_for_log(log, "listening on", 20)
    return proc


def dhcp_replies_from(packets: list[object], server_ip: str, mac: str) -> list[object]:
    """DHCP/ProxyDHCP replies ``server_ip`` sent for ``mac`` (by chaddr, whatever the destination)."""
    chaddr = bytes.fromhex(mac.replace(":", ""))
    return [p for p in packets
            if p.haslayer(BOOTP) and p[IP].src == server_ip and p[UDP].sport in DHCP_PORTS  # type: ignore[attr-defined]
            and p[BOOTP].op == 2 and bytes(p[BOOTP].chaddr)[:6] == chaddr]  # type: ignore[attr-defined]


def dhcp_options(packet: object) -> dict[str, object]:
    return {o[0]: o[1] for o in packet[DHCP].options if isinstance(o, tuple)}  # type: ignore[index]


def boot_file_of(packet: object) -> bytes:
    """The boot file a DHCP reply names, in the ``file`` field or in option 67."""
    named = dhcp_options(packet).get("boot-file-name", b"")
    named = named if isinstance(named, bytes) else str(named).encode()
    return bytes(packet[BOOTP].file).rstrip(b"\0") or named  # type: ignore[index]


def boot_fetches(packets: list[object], served: Served) -> list[str]:
    """What the VM asked for a boot file: TFTP read requests to anyone, TCP to netboot's HTTP port."""
    asked = []
    for p in packets:
        if p.haslayer(UDP) and p[UDP].dport == 69:  # type: ignore[attr-defined]
            asked.append(f"TFTP {p[IP].dst}: {bytes(p[UDP].payload)[:80]!r}")  # type: ignore[attr-defined]
        if p.haslayer(TCP) and p[TCP].dport == served.http_port and p[TCP].flags.S:  # type: ignore[attr-defined]
            asked.append(f"HTTP {p[IP].dst}:{p[TCP].dport}")  # type: ignore[attr-defined]
    return asked


@pytest.mark.parametrize(
    ("firmware", "mode", "local_boot"),
    [
        ("bios", "proxy", "skip"),
        ("uefi", "proxy", "skip"),
        ("bios", "full", "skip"),
        ("bios", "proxy", "auto"),  # the iPXE hand-back, for the time it costs against skip
    ],
)
def test_installed_machine_boots_its_disk(
    lab: Lab, tmp_path: Path, artifacts: Path, firmware: str, mode: str, local_boot: str
) -> None:
    assert not missing_firmware(firmware), f"make test installs {missing_firmware(firmware)}"
    srv = lab.host("srv", 1)
    if mode == "proxy":
        start_dnsmasq(lab, tmp_path, artifacts / "dnsmasq.log")
        served = start_netboot(lab, srv, artifacts, "--dhcp-mode", "proxy")
    else:
        served = start_netboot(
            lab, srv, artifacts, "--dhcp-mode", "full", "--dhcp-range", f"{lab.ip(100)}-{lab.ip(110)}"
        )
    mac = {"bios": "52:54:00:10:ca:01", "uefi": "52:54:00:10:ca:02"}[firmware]
    cli(served, "system", "add", mac, "--profile", "debian12-preseed", "--hostname", f"done-{firmware}")
    # skip is the default: only the hand-back case says anything
    cli(served, "system", "set", mac, "--state", "installed",
        *(["--local-boot", local_boot] if local_boot != "skip" else []))
    assert json.loads(cli(served, "system", "show", mac, "--json"))["state"] == "installed"

    tap = lab.tap()
    pcap = artifacts / "vm.pcap"
    capture = start_capture(lab.bridge, tap, pcap)
    spec = VmSpec(name=f"local-{firmware}-{mode}", mac=mac, tap=tap, firmware=firmware, memory_mb=256,
                  serial_log=artifacts / "serial.log", state_dir=tmp_path)
    console = Console(spec.serial_log, time.monotonic())  # type: ignore[arg-type]
    vm = lab.bridge.spawn(command(spec) + disk_args(firmware, tmp_path, MARKER), log=artifacts / "qemu.log")
    milestones = [NIC_TRIED[firmware], *([PXE4_LEFT[firmware]] if firmware in PXE4_LEFT else []), MARKER]
    try:
        console.wait(milestones, REACH_DISK_WITHIN[firmware])
    except TimeoutError:
        raise AssertionError(f"the VM never reached its disk; serial console:\n{console.text()[-3000:]}\n"
                             f"netboot log:\n{served.log_text()[-3000:]}") from None
    finally:
        (artifacts / "elapsed.txt").write_text("".join(
            f"{firmware} {mode} local_boot={local_boot}: {at:6.1f} s {text}\n"
            for text, at in console.seen_at.items()))
        stop(vm)
        stop(capture)  # tcpdump finishes the capture file on SIGTERM
    # the disk was reached by falling through from the NIC, not by booting it first
    assert console.seen_at[NIC_TRIED[firmware]] <= console.seen_at[MARKER]

    packets = list(rdpcap(str(pcap)))
    replies = dhcp_replies_from(packets, served.ip, mac)
    seen = events(served, mac)
    if local_boot != "skip":
        # the hand-back: netboot named a boot file and the VM fetched its script from netboot
        assert any(boot_file_of(r) for r in replies), [r.summary() for r in replies]  # type: ignore[attr-defined]
        assert boot_fetches(packets, served)
        assert any(e["phase"] == "boot-script" for e in seen), seen
        return

    assert not boot_fetches(packets, served), boot_fetches(packets, served)
    if mode == "proxy":
        # silence: no ProxyDHCP OFFER, no port 4011 ACK; dnsmasq alone gave the VM its address
        assert replies == [], [r.summary() for r in replies]  # type: ignore[attr-defined]
    else:
        acks = [r for r in replies if dhcp_options(r).get("message-type") == 5]
        assert acks, f"netboot never ACKed {mac}: {[r.summary() for r in replies]}"  # type: ignore[attr-defined]
        assert all(r[BOOTP].yiaddr != "0.0.0.0" for r in acks)  # type: ignore[index]
        assert [boot_file_of(r) for r in replies] == [b""] * len(replies)
        assert mac in {str(lease["mac"]) for lease in served.leases()}

    # netboot heard the machine and recorded it, but sent it nowhere
    assert any(e["phase"] == "dhcp" for e in seen), seen
    assert not [e for e in seen if e["phase"] in ("tftp", "http", "boot-script")], seen
    assert not [e for e in seen if isinstance(e.get("detail"), dict) and e["detail"].get("boot_file")], seen
    mine = [line for line in served.log_text().splitlines() if mac in line]
    assert not [line for line in mine if ": ipxe -> " in line], mine

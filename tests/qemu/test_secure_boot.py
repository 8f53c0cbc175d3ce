"""UEFI Secure Boot with Microsoft's keys enrolled (OVMF ``OVMF_CODE_4M.ms.fd``, ``-machine q35,smm=on``):
a registered machine on the ``shim-grub`` chain boots shim -> signed GRUB -> its per-MAC grub.cfg -> the
signed Debian installer kernel, which reports Secure Boot on, and the installer fetches its preseed with
the install token; in full mode and in proxy mode beside dnsmasq.

The same firmware shows that Secure Boot is really on: it refuses the ``ipxe`` chain's unsigned
``ipxe.efi`` ("Access Denied"), and GRUB refuses a kernel whose signature was removed ("bad shim
signature"). What GRUB asked for is read from netboot's TFTP log and held to the config netboot rendered:
the stub's ``grub.cfg-01-<mac>``, then exactly the kernel and initrd that config names. After the
completion callback the machine's next Secure Boot netboot goes to its local disk: no boot file
(``local_boot: skip``), or through netboot's shim and GRUB, which chains the disk's own signed shim
(``local_boot: exit``). ProxyDHCP works when the site's DHCP server names netboot as next-server (GRUB
ignores ProxyDHCP).

UEFI HTTP Boot, in full mode and in proxy mode: the firmware fetches netboot's disk image
(``/shim-grub/<mac>.img``, netboot.shimdisk) and boots shim from it as a RAM disk; its GRUB runs DHCP
itself and asks by TFTP only its per-MAC config, then the kernel and initrd; the installer fetches its
preseed with the token as under PXE.

Under TCG: the firmware has shim at about 10 s, GRUB its config at 14-23 s, the kernel reports Secure Boot
at 30-70 s by PXE (the 40 MB initrd over TFTP is the longest step) and at about 22 s by HTTP Boot, the
installer asks for its preseed at about 2 minutes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from netlab import Lab, Netns, stop, wait_for
from served import Served, start_dnsmasq, start_netboot

from netboot.loaders import find_shim_files
from netboot.qemu import VmSpec, command, missing_firmware

from .bootdisk import disk_args
from .test_install_lifecycle import DEBIAN_INSTALLER
from .vmtools import Console, as_machine, cli, events, install_network, phases, system

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
#: the kernel prints these when it was started by shim-verified GRUB with Secure Boot on
SECURE_BOOT_ON = "secureboot: Secure boot enabled"
#: OVMF refusing an image its db does not trust
REFUSED = "Access Denied"
#: what the local disk's signed GRUB prints (tests/qemu/bootdisk.py write_signed_esp)
LOCAL_DISK = "NETBOOT-TEST: LOCAL DISK REACHED"
#: GRUB (through shim_lock) refusing a kernel without a trusted signature
BAD_SIGNATURE = "bad shim signature"
#: netboot's TFTP log line: ``<ip>:<port> <name as asked> <outcome> bytes=...``
TFTP_LINE = re.compile(r"netboot\.tftp: (?P<ip>[0-9.]+):\d+ (?P<name>\S+) (?P<outcome>[a-z-]+) bytes=")
#: shim 16.1 asks for these before GRUB; "not found" is the right answer for Debian 12
SHIM_OPTIONAL = ("revocations_sku.efi", "revocations_sbat.efi", "shim_certificate_0.efi")


def tftp_requests(served: Served, since: int, client_ip: str) -> list[tuple[str, str]]:
    """``(name as asked, outcome)`` of each TFTP request from ``client_ip`` in the log after ``since``."""
    asked = []
    for match in TFTP_LINE.finditer(served.log_text()[since:]):
        if match["ip"] == client_ip:
            asked.append((match["name"], match["outcome"]))
    return asked


def vm_ip(served: Served, mac: str) -> str:
    """The address the machine's TFTP requests came from (its lease, from dnsmasq or from netboot)."""
    return next(str(e["client_ip"]) for e in events(served, mac)
                if e["phase"] == "tftp" and e["client_ip"])


def grub_paths(config: str) -> list[str]:
    """The TFTP paths a rendered grub.cfg's ``linux`` and ``initrd`` lines name, as GRUB will ask them."""
    return re.findall(r"'\(tftp,[0-9.]+\)(/[^']+)'", config)


def boot(lab: Lab, vm: VmSpec, log: Path) -> tuple[subprocess.Popen[bytes], Console]:
    """Start ``vm``; its console is read from its serial log, timed from now."""
    assert vm.serial_log is not None
    proc = lab.bridge.spawn(command(vm), log=log)
    return proc, Console(vm.serial_log, time.monotonic())


def installs_under_secure_boot(
    lab: Lab, served: Served, helper: Netns, vm: VmSpec, artifacts: Path
) -> tuple[str, list[tuple[str, str]]]:
    """Boot ``vm`` (a shim-grub machine in install state) until the installer fetched its preseed; the
    console shows Secure Boot on. Returns the machine's address and the TFTP names it asked, in order."""
    mac = vm.mac
    token = str(system(served, mac)["token"])
    since = len(served.log_text())
    proc, console = boot(lab, vm, artifacts / f"qemu-{vm.name}.log")
    try:
        console.wait(["EFI stub: UEFI Secure Boot is enabled.", SECURE_BOOT_ON], 300)
        wait_for(lambda: "answer-file" in phases(served, mac), 300, interval=2, what="the preseed fetch")
    except TimeoutError:
        raise AssertionError(f"no Secure Boot install:\n{console.text()[-3000:]}\n"
                             f"{served.log_text()[since:][-4000:]}") from None
    finally:
        stop(proc)
    (artifacts / f"elapsed-{vm.name}.txt").write_text(
        "".join(f"{at:6.1f} s  {text}\n" for text, at in console.seen_at.items()))
    address = vm_ip(served, mac)
    asked = tftp_requests(served, since, address)
    names = [name for name, _ in asked]

    configs = [n for n in names if n.startswith("/grub/grub.cfg")]
    if vm.firmware.endswith("-http"):
        # shim, GRUB and MokManager came inside the disk image, by HTTP (HEAD, then GET, as OVMF asks);
        # the image's GRUB asks its per-MAC config by TFTP at once
        assert not [n for n in names if n.endswith(".efi")], names
        assert configs == [f"/grub/grub.cfg-01-{mac}"], names
        image = [e for e in events(served, mac) if e["summary"] == "shim-grub disk image (UEFI HTTP Boot)"]
        assert image and image[0]["client_ip"] == vm_ip(served, mac), image
    else:
        # shim from the firmware, GRUB from shim, then the one config name this GRUB asks: rendered for
        # the machine when netboot knows its address from DHCP, else the stub, whose per-MAC name (colons,
        # as $net_default_mac spells it) GRUB asks next
        order = ["shimx64.efi", "grubx64.efi", "/grub/grub.cfg"]
        assert all(n in names for n in order), names
        firsts = [names.index(n) for n in order]
        assert firsts == sorted(firsts), names
        assert configs in (["/grub/grub.cfg"], ["/grub/grub.cfg", f"/grub/grub.cfg-01-{mac}"]), names
    assert all(outcome == "refused" for name, outcome in asked if name in SHIM_OPTIONAL), asked
    assert "mmx64.efi" not in names  # shim verified GRUB: no MokManager detour

    # the config GRUB got names the kernel and initrd it asked next, and nothing else; fetched again here
    # by another client (curl), which gets the same config without the token
    config = helper.run("curl", "-fsS", f"tftp://{served.ip}/grub/grub.cfg-01-{mac}", timeout=30).stdout
    (artifacts / f"grub.cfg-{vm.name}").write_text(config)
    wanted = grub_paths(config)
    assert len(wanted) == 2 and wanted[0].endswith("/linux") and wanted[1].endswith("/initrd.gz"), config
    after = names[names.index(configs[-1]) + 1:]
    assert [n for n in after if n.startswith("/files/")] == wanted, after
    assert all(outcome == "complete" for name, outcome in asked if name in wanted), asked
    assert token not in config  # asked from an address that is not the machine's
    return address, asked


def boot_until_logged(lab: Lab, served: Served, vm: VmSpec, artifacts: Path, text: str) -> str:
    """Boot ``vm`` until netboot logs ``text`` (within 2 minutes); what netboot logged meanwhile."""
    since = len(served.log_text())
    proc = lab.bridge.spawn(command(vm), log=artifacts / f"qemu-{vm.name}.log")
    try:
        wait_for(lambda: text in served.log_text()[since:], 120, interval=1,
                 what=f"{text!r} in netboot's log")
    finally:
        stop(proc)
    return served.log_text()[since:]


def wait_refusal(lab: Lab, vm: VmSpec, artifacts: Path, text: str) -> str:
    proc, console = boot(lab, vm, artifacts / f"qemu-{vm.name}.log")
    try:
        console.wait([text], 180)
    except TimeoutError:
        raise AssertionError(f"no {text!r} on the console:\n{console.text()[-3000:]}") from None
    finally:
        stop(proc)
    return console.text()


def test_secure_boot_full_mode_install_refusal_and_local_after_done(
    lab: Lab, tmp_path: Path, artifacts: Path
) -> None:
    assert not missing_firmware("uefi-sb"), f"make test installs {missing_firmware('uefi-sb')}"
    assert DEBIAN_INSTALLER.exists(), "make test installs debian-installer-12-netboot-amd64"
    srv = lab.host("srv", 1)
    helper = lab.host("cli", 9)
    served = start_netboot(lab, srv, artifacts, config=install_network(lab))
    assert "Secure Boot (shim-grub): shimx64.efi=" in served.log_text()  # make test installed them
    # MokManager and the fallback are served beside shim (shim asks mmx64.efi when GRUB fails verification)
    found, missing = find_shim_files(None)
    assert not missing, missing
    for name in ("mmx64.efi", "fbx64.efi"):
        got = helper.run("curl", "-fsS", "-o", "/dev/null", "-w", "%{size_download}",
                         f"tftp://{served.ip}/{name}", timeout=60).stdout
        assert int(got) == found[name].stat().st_size, name
    mac = "52:54:00:5b:0e:01"
    cli(served, "system", "add", mac, "--profile", "debian12-preseed", "--hostname", "sb-full",
        "--var", "kernel_args=console=ttyS0", "--boot-chain", "ipxe")
    vm = VmSpec(name="sb-ipxe", mac=mac, tap=lab.tap(), firmware="uefi-sb", memory_mb=1024,
                serial_log=artifacts / "serial-ipxe.log", state_dir=tmp_path)

    # the ipxe chain: OVMF downloads Debian's unsigned ipxe.efi and refuses to run it
    since = len(served.log_text())
    console = wait_refusal(lab, vm, artifacts, REFUSED)
    assert "BdsDxe: failed to load Boot" in console and "UEFI PXEv4" in console
    log = served.log_text()[since:]
    assert re.search(r"netboot\.tftp: \S+ ipxe\.efi complete", log), log[-3000:]
    assert ": ipxe -> " not in log  # iPXE never ran, so no boot script was asked

    # the shim-grub chain on the same machine and firmware: installs with Secure Boot on
    cli(served, "system", "set", mac, "--boot-chain", "shim-grub")
    token = system(served, mac)["token"]
    sb = replace(vm, name="sb-full", serial_log=artifacts / "serial.log")
    address, _asked = installs_under_secure_boot(lab, served, helper, sb, artifacts)
    answer = next(e for e in events(served, mac) if e["phase"] == "answer-file")
    assert answer["client_ip"] == address  # the installer on the machine's own address, with its token

    # UEFI HTTP Boot: the disk image from netboot's DHCP, its GRUB's own DHCP from netboot too, then the
    # same config, kernel and preseed
    http = "52:54:00:5b:0e:05"
    cli(served, "system", "add", http, "--profile", "debian12-preseed", "--var", "kernel_args=console=ttyS0",
        "--boot-chain", "shim-grub")
    web = replace(sb, name="sb-full-http", mac=http, firmware="uefi-sb-http", tap=lab.tap(),
                  serial_log=artifacts / "serial-http.log")
    installs_under_secure_boot(lab, served, helper, web, artifacts)

    # the preseed's late_command from the machine's address (the VM is stopped)
    with as_machine(lab, helper, mac, address):
        done = helper.run("curl", "-fsS", "--interface", address, f"{served.http}/done/{mac}?token={token}",
                          timeout=30)
    assert "next boot is local" in done.stdout
    assert system(served, mac)["state"] == "installed"

    # the next Secure Boot netboot: no boot file, so the firmware goes on to its disk (no shim, no GRUB)
    next_boot = replace(sb, name="sb-second", serial_log=artifacts / "serial-second.log")
    second = boot_until_logged(lab, served, next_boot, artifacts, "no boot file (state installed")
    assert f"{mac} (" in second and "shimx64.efi" not in second and "grub.cfg" not in second

    # local boot through GRUB (local_boot exit): shim and GRUB from netboot, whose grub.cfg chains the
    # installed system's own shim from its EFI system partition, which Secure Boot accepts; that disk's
    # GRUB prints the marker (GRUB's bare exit would leave OVMF in its setup menu)
    cli(served, "system", "set", mac, "--local-boot", "exit")
    since = len(served.log_text())
    third = replace(sb, serial_log=artifacts / "serial-local.log")
    proc = lab.bridge.spawn(command(third) + disk_args("uefi", tmp_path, LOCAL_DISK, signed=True),
                            log=artifacts / "qemu-local-boot.log")
    console = Console(artifacts / "serial-local.log", time.monotonic())
    try:
        console.wait(["netboot: boot from the local disk", "File(shimx64.efi)", LOCAL_DISK], 180)
    except TimeoutError:
        raise AssertionError(f"GRUB did not chain the disk:\n{console.text()[-3000:]}") from None
    finally:
        stop(proc)
    log = served.log_text()[since:]
    assert "grub -> state installed: local boot" in log and "/files/" not in log
    assert "HD(" in console.text().split("netboot: boot from the local disk")[-1]  # the disk's shim


def unsigned_profile(tmp_path: Path) -> Path:
    """A profiles dir: this checkout's, plus ``debian12-unsigned``, the Debian profile whose data_dir has
    the installer kernel with its signature removed (``sbattach --remove``)."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    data = tmp_path / "unsigned-data" / "debian-installer" / "amd64"
    data.mkdir(parents=True)
    kernel = data / "linux"
    shutil.copyfile(DEBIAN_INSTALLER, kernel)
    subprocess.run(["sbattach", "--remove", str(kernel)], check=True, capture_output=True, timeout=60)
    shutil.copyfile(DEBIAN_INSTALLER.with_name("initrd.gz"), data / "initrd.gz")
    (profiles / "debian12-unsigned").mkdir()
    (profiles / "debian12-unsigned" / "profile.yaml").write_text(
        "description: Debian 12 with an unsigned kernel (Secure Boot must refuse it)\n"
        "parent: debian12-preseed\n"
        f"data_dir: {tmp_path / 'unsigned-data'}\n"
    )
    return profiles


def from_dnsmasq(lab: Lab, address: str) -> bool:
    """Whether ``address`` is one of dnsmasq's leases (served.start_dnsmasq: .150-.160), not netboot's."""
    net, _, host = address.rpartition(".")
    return net == lab.net and 150 <= int(host) <= 160


def next_servers(dnsmasq_log: str, mac: str) -> set[str]:
    """The next-server addresses dnsmasq (``--log-dhcp``) named in its replies to ``mac``."""
    xids = set(re.findall(rf"dnsmasq-dhcp: (\d+) DHCP[A-Z]+\(\S+\) (?:\S+ )?{mac}", dnsmasq_log))
    return {m[2] for m in re.finditer(r"dnsmasq-dhcp: (\d+) next server: (\S+)", dnsmasq_log) if m[1] in xids}


def test_secure_boot_proxy_mode_and_http_boot(lab: Lab, tmp_path: Path, artifacts: Path) -> None:
    """netboot's ProxyDHCP names shim beside dnsmasq, which leases the address. Debian 12's GRUB ignores
    ProxyDHCP (it reads only the DHCP server's ACK: rhboot/grub2#56), so the site's DHCP server names
    netboot as next-server to PXE clients, without a boot file (dnsmasq ``--dhcp-boot=tag:pxe,,,<netboot>``
    for vendor class PXEClient); docs/profiles.md. HTTP Boot needs no next-server: dnsmasq names none to
    the firmware (HTTPClient) nor to the image's GRUB (no vendor class), and the image names netboot."""
    assert not missing_firmware("uefi-sb-http")
    helper = lab.host("cli", 9)
    # a name server too: without one d-i stops to ask for it before its preseed (any address will do)
    start_dnsmasq(lab, tmp_path, artifacts / "dnsmasq.log", "--dhcp-vendorclass=set:pxe,PXEClient",
                  f"--dhcp-boot=tag:pxe,,,{lab.ip(1)}", f"--dhcp-option=option:dns-server,{lab.ip(2)}")
    served = start_netboot(lab, lab.host("srv", 1), artifacts, "--dhcp-mode", "proxy")
    mac, http = "52:54:00:5b:0e:02", "52:54:00:5b:0e:04"
    for each in (mac, http):
        cli(served, "system", "add", each, "--profile", "debian12-preseed",
            "--var", "kernel_args=console=ttyS0", "--boot-chain", "shim-grub")

    vm = VmSpec(name="sb-proxy", mac=mac, tap=lab.tap(), firmware="uefi-sb", memory_mb=1024,
                serial_log=artifacts / "serial.log", state_dir=tmp_path)
    address, _asked = installs_under_secure_boot(lab, served, helper, vm, artifacts)
    assert from_dnsmasq(lab, address)

    # UEFI HTTP Boot on the chain: the disk image from netboot's ProxyDHCP answer, its GRUB's DHCP from
    # dnsmasq, then the same config, kernel and preseed by TFTP and HTTP from netboot
    web = replace(vm, name="sb-http", mac=http, firmware="uefi-sb-http", tap=lab.tap(),
                  serial_log=artifacts / "serial-http.log")
    address, _asked = installs_under_secure_boot(lab, served, helper, web, artifacts)
    assert from_dnsmasq(lab, address)
    leases = (artifacts / "dnsmasq.log").read_text()
    assert lab.ip(1) in next_servers(leases, mac)  # the PXE machine's GRUB needed it
    assert lab.ip(1) not in next_servers(leases, http)  # firmware and GRUB of the HTTP Boot one never had it


def test_secure_boot_site_dhcp_stub_config_and_unsigned_kernel(
    lab: Lab, tmp_path: Path, artifacts: Path
) -> None:
    """The site's DHCP server (dnsmasq) names shimx64.efi on netboot and netboot runs no DHCP, so it never
    learns the machine's address: GRUB's one config name gets the stub, GRUB asks its per-MAC name, and
    that config loads a kernel whose signature was removed, which shim_lock refuses."""
    assert shutil.which("sbattach"), "make test installs sbsigntool"
    srv_ip = lab.ip(1)
    start_dnsmasq(lab, tmp_path, artifacts / "dnsmasq.log", f"--dhcp-boot=shimx64.efi,,{srv_ip}")
    config = f"profiles-dir: {unsigned_profile(tmp_path)}\ndhcp:\n  mode: \"off\"\n"
    served = start_netboot(lab, lab.host("srv", 1), artifacts, config=config)
    mac = "52:54:00:5b:0e:03"
    cli(served, "system", "add", mac, "--profile", "debian12-unsigned", "--var", "kernel_args=console=ttyS0",
        "--boot-chain", "shim-grub", "--config", str(artifacts / "netboot.yaml"))
    vm = VmSpec(name="sb-unsigned", mac=mac, tap=lab.tap(), firmware="uefi-sb", memory_mb=1024,
                serial_log=artifacts / "serial.log", state_dir=tmp_path)
    console = wait_refusal(lab, vm, artifacts, BAD_SIGNATURE)
    log = served.log_text()
    asked = [m["name"] for m in TFTP_LINE.finditer(log)]
    per_mac = f"/grub/grub.cfg-01-{mac}"
    assert asked[asked.index("/grub/grub.cfg") + 1] == per_mac, asked  # the stub sent it to its own name
    assert asked[asked.index(per_mac) + 1] == "/files/debian12-unsigned/debian-installer/amd64/linux", asked
    assert "Secure boot enabled" not in console and "answer-file" not in phases(served, mac)

"""QEMU command lines for network-booting VMs: SeaBIOS + iPXE ROM, OVMF PXE, OVMF HTTP Boot.

Used by ``netboot lab`` and by the firmware tests. KVM is used only when ``/dev/kvm`` can really run a
guest (checked by starting one); otherwise TCG, which is slow but works everywhere.

Firmware facts this relies on (QEMU 7.2, ipxe-qemu 2019, OVMF 2022.11 from Debian 12):

- ``bios``: SeaBIOS runs the e1000 option ROM, which *is* iPXE (``/usr/lib/ipxe/qemu/efi-e1000.rom``).
- ``uefi``: OVMF's own PXE client on ``virtio-net-pci,romfile=`` (no iPXE ROM), which TFTPs ``ipxe.efi``.
- ``uefi-http``: the same NIC with OVMF's PXE entries switched off through fw_cfg
  (``opt/org.tianocore/IPv4PXESupport`` = ``no``, read by OVMF's PxeBcPcdProducerLib with
  ``QemuFwCfgParseBool``, which takes true/yes/y/1 and false/no/n/0), so the only network boot option
  left for the NIC is UEFI HTTP Boot.
- ``uefi-sb`` / ``uefi-sb-http``: the same two with Secure Boot on and Microsoft's keys enrolled
  (``OVMF_CODE_4M.ms.fd``, the SMM build, and a copy of ``OVMF_VARS_4M.ms.fd``). The SMM build needs
  ``-machine q35,smm=on`` and the code flash marked secure (``cfi.pflash01`` ``secure=on``), else QEMU
  refuses to start or OVMF stops early. Such a VM runs Microsoft-signed shim, refuses Debian's unsigned
  ``ipxe.efi`` ("Access Denied"), see docs/secure-boot-research.md.
- ``uefi-sb-snakeoil``: Secure Boot on with only the ovmf package's snakeoil key enrolled
  (``OVMF_VARS_4M.snakeoil.fd``, key and certificate in ``/usr/share/ovmf/PkKek-1-snakeoil.*``): a
  custom-key site, where Microsoft-signed shim is refused and only binaries signed with that key run.

The Secure Boot kinds are in :data:`SECURE_BOOT_FIRMWARES`, not in :data:`FIRMWARES` (what ``netboot lab``
offers): such a VM boots only when its system is on ``boot_chain: shim-grub``, which the lab does not set;
``tests/qemu/test_secure_boot.py`` boots them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Debian's ovmf package; other layouts (e.g. /usr/share/edk2/ovmf) through these two variables
OVMF_CODE = Path(os.environ.get("NETBOOT_OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd"))
OVMF_VARS = Path(os.environ.get("NETBOOT_OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"))
#: Secure Boot builds (SMM): Microsoft keys enrolled (ms) and ovmf's own snakeoil key (snakeoil)
OVMF_SB_CODE = Path(os.environ.get("NETBOOT_OVMF_SB_CODE", "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"))
OVMF_SB_VARS = Path(os.environ.get("NETBOOT_OVMF_SB_VARS", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"))
OVMF_SNAKEOIL_CODE = Path(
    os.environ.get("NETBOOT_OVMF_SNAKEOIL_CODE", "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd")
)
OVMF_SNAKEOIL_VARS = Path(
    os.environ.get("NETBOOT_OVMF_SNAKEOIL_VARS", "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd")
)
IPXE_E1000_ROM = Path("/usr/lib/ipxe/qemu/efi-e1000.rom")
FIRMWARES = ("bios", "uefi", "uefi-http")
SECURE_BOOT_FIRMWARES = ("uefi-sb", "uefi-sb-http", "uefi-sb-snakeoil")
ALL_FIRMWARES = FIRMWARES + SECURE_BOOT_FIRMWARES


@dataclass(frozen=True)
class VmSpec:
    name: str
    mac: str
    tap: str
    firmware: str = "bios"
    memory_mb: int = 1024
    disk: Path | None = None
    #: the serial console's output, appended to this file
    serial_log: Path | None = None
    #: with ``serial_log``: also offer the serial console on this UNIX socket (``netboot lab console``)
    serial_socket: Path | None = None
    #: a QMP monitor on this UNIX socket (screenshots, clean quit)
    qmp_socket: Path | None = None
    #: directory for per-VM files (a writable copy of the OVMF variable store)
    state_dir: Path | None = None


def ovmf_images(firmware: str) -> tuple[Path, Path, bool]:
    """The (code, variable template, secure) OVMF images a UEFI firmware type boots with."""
    if firmware in ("uefi-sb", "uefi-sb-http"):
        return OVMF_SB_CODE, OVMF_SB_VARS, True
    if firmware == "uefi-sb-snakeoil":
        return OVMF_SNAKEOIL_CODE, OVMF_SNAKEOIL_VARS, True
    return OVMF_CODE, OVMF_VARS, False


def missing_firmware(firmware: str) -> list[str]:
    """Debian packages a firmware type needs that are not installed."""
    missing = []
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86")
    if firmware == "bios" and not IPXE_E1000_ROM.exists():
        missing.append("ipxe-qemu")
    if firmware.startswith("uefi") and not all(p.exists() for p in ovmf_images(firmware)[:2]):
        missing.append("ovmf")
    return missing


def missing_disk_tools() -> list[str]:
    """Debian packages needed to create VM disks (``qemu-img``)."""
    return [] if shutil.which("qemu-img") else ["qemu-utils"]


#: Linux kernels the KVM probe may boot (the Debian installer's, then the host's own)
PROBE_KERNELS = (Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux"),)


def _probe_kernel() -> Path | None:
    boot = sorted(Path("/boot").glob("vmlinuz-*"), reverse=True) if Path("/boot").is_dir() else []
    for candidate in (*PROBE_KERNELS, *boot):
        if candidate.is_file() and os.access(candidate, os.R_OK):
            return candidate
    return None


def kvm_usable(timeout: float = 8.0) -> bool:
    """True when /dev/kvm can really run a guest.

    Opening /dev/kvm, or starting QEMU with ``-accel kvm``, proves little: on some hosts (nested or
    PVM-backed ones, like the machines this project is built on) QEMU starts and SeaBIOS even runs, but a
    guest that switches to protected mode (iPXE, Linux) hangs. So the probe boots a real Linux kernel
    (no disk, no NIC, no initrd) and waits for its first console line, which working KVM prints in well
    under a second. Without a kernel to probe with, the answer is False: TCG always works.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or shutil.which("qemu-system-x86_64") is None:
        return False
    kernel = _probe_kernel()
    if kernel is None:
        return False
    with tempfile.TemporaryDirectory(prefix="netboot-kvm-probe-") as tmp:
        log = Path(tmp) / "serial.log"
        argv = [
            "qemu-system-x86_64",
            "-accel",
            "kvm",
            "-m",
            "128",
            "-display",
            "none",
            "-no-user-config",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            f"file:{log}",
            "-kernel",
            str(kernel),
            "-append",
            "console=ttyS0 panic=-1",
        ]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError:
            return False
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if log.exists() and b"Linux version" in log.read_bytes():
                    return True
                if proc.poll() is not None:
                    return False
                time.sleep(0.1)
            return False
        finally:
            proc.kill()
            proc.wait(5)


def create_disk(path: Path, size_gb: int = 8) -> None:
    """A sparse qcow2 disk (grows only as the guest writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_gb}G"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _serial(spec: VmSpec) -> list[str]:
    if spec.serial_log is None:
        return ["-serial", "null"]
    if spec.serial_socket is None:
        return ["-serial", f"file:{spec.serial_log}"]
    # a socket server that never waits for a client; everything the guest writes also goes to the log
    return [
        "-chardev",
        f"socket,id=serial0,path={spec.serial_socket},server=on,wait=off,"
        f"logfile={spec.serial_log},logappend=on",
        "-serial",
        "chardev:serial0",
    ]


def command(spec: VmSpec, *, accel: str = "tcg") -> list[str]:
    """The qemu-system-x86_64 argv for ``spec``: no display, serial to a file, network boot first."""
    if spec.firmware not in ALL_FIRMWARES:
        raise ValueError(f"unknown firmware {spec.firmware!r}; one of {', '.join(ALL_FIRMWARES)}")
    cmd = [
        "qemu-system-x86_64",
        "-name",
        spec.name,
        "-accel",
        accel,
        "-m",
        str(spec.memory_mb),
        "-display",
        "none",
        "-no-user-config",
        "-nodefaults",
        "-vga",
        "std",
        "-netdev",
        f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
    ]
    cmd += _serial(spec)
    if spec.qmp_socket is not None:
        cmd += ["-qmp", f"unix:{spec.qmp_socket},server=on,wait=off"]
    if spec.firmware == "bios":
        # sgabios copies the text screen (SeaBIOS, iPXE) to the serial port, so it lands in the serial log
        cmd += ["-device", "sga", "-device", f"e1000,netdev=net0,mac={spec.mac},bootindex=1"]
    else:
        if spec.state_dir is None:
            raise ValueError("UEFI VMs need a state_dir for their variable store")
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        code, template, secure = ovmf_images(spec.firmware)
        # one copy per VM and per kind: a Secure Boot store is never reused by a plain VM, nor back
        vars_copy = spec.state_dir / (
            f"{spec.name}-{template.name}" if secure else f"{spec.name}-OVMF_VARS.fd"
        )
        if not vars_copy.exists():
            shutil.copyfile(template, vars_copy)
        if secure:
            # the SMM build stops unless SMM is on and only SMM code may write the variable flash
            cmd += [
                "-machine",
                "q35,smm=on",
                "-global",
                "driver=cfi.pflash01,property=secure,value=on",
                "-global",
                "ICH9-LPC.disable_s3=1",
            ]
        else:
            cmd += ["-machine", "q35"]
        cmd += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={vars_copy}",
            # romfile= empty: OVMF's own PXE/HTTP client, not the NIC's iPXE ROM
            "-device",
            f"virtio-net-pci,netdev=net0,mac={spec.mac},romfile=,bootindex=1",
        ]
        if spec.firmware in ("uefi-http", "uefi-sb-http"):
            cmd += [
                "-fw_cfg",
                "name=opt/org.tianocore/IPv4PXESupport,string=no",
                "-fw_cfg",
                "name=opt/org.tianocore/IPv6PXESupport,string=no",
            ]
    if spec.disk is not None:
        cmd += ["-drive", f"file={spec.disk},if=virtio,format=qcow2"]
    return cmd

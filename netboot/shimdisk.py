"""The shim-grub chain for UEFI HTTP Boot: a small FAT disk image holding shim and signed GRUB.

Why a disk image: Debian 12's signed GRUB has no ``http`` module and cannot load one under Secure Boot.
Started by HTTP (firmware -> ``shimx64.efi`` -> ``grubx64.efi``, all by HTTP), its prefix is
``(http,SERVER)/grub``, which it cannot read, and it stops at ``grub>``. But UEFI HTTP Boot can also fetch
a disk image (UEFI 2.7 section 24.7, Content-Type ``application/vnd.efi-img``): the firmware registers it
as a RAM disk and starts the disk's removable-media loader ``\\EFI\\BOOT\\BOOTX64.EFI``, verified against
its db like any boot file. Here that is Microsoft-signed shim; shim loads ``grubx64.efi`` beside it from
the RAM disk and GRUB, now with prefix ``(hd0)/grub``, reads the ``grub/grub.cfg`` of the image. That
config brings up the network with GRUB's own DHCP client (``net_bootp``: a GRUB started from a disk has
no network yet) and sources the machine's per-MAC ``grub.cfg`` from netboot by TFTP, where the chain goes
on exactly as under PXE (``docs/secure-boot-research.md`` has the traffic).

==========================  ============================================================================
in the image                why
==========================  ============================================================================
``EFI/BOOT/BOOTX64.EFI``    shim (``shimx64.efi``): what the firmware starts from a disk
``EFI/BOOT/grubx64.efi``    signed GRUB, the one name shim loads
``EFI/BOOT/mmx64.efi``      MokManager, which shim starts when GRUB fails verification (when found)
``grub/grub.cfg``           written per machine: ``net_bootp``, then the per-MAC config over TFTP
==========================  ============================================================================

The fallback ``fbx64.efi`` is left out on purpose: shim started as ``BOOTX64.EFI`` runs the fallback
instead of GRUB when it sits beside it, and the fallback looks for an installed system's boot entries.

The image is built with mtools (``mformat``, ``mmd``, ``mcopy``: no root, no loop device) once, and again
when one of its loader files changes (a shim upgrade carries revocations). The config is a fixed-size slot
padded with a GRUB comment, so a machine's image is the template with that one span replaced: its FAT and
directory entries stay valid, and a request costs a copy, not a build.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from netboot.boot.urls import GRUB_CONFIG, GRUB_FILE, SHIM_BOOT_FILE
from netboot.mac import MacAddress

#: the mtools programs the build runs (Debian package ``mtools``)
MTOOLS = ("mformat", "mmd", "mcopy")
MTOOLS_PACKAGE = "mtools"
#: the image's Content-Type: UEFI HTTP Boot treats the download as a RAM disk (not an EFI program)
CONTENT_TYPE = "application/vnd.efi-img"
MOKMANAGER = "mmx64.efi"
#: bytes of the per-machine config slot (the config is about 600, 1 100 with the longest host name)
SLOT_SIZE = 2048
#: what may name the TFTP server in the config: an IPv4 address or a DNS name, nothing GRUB would parse
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9-]{1,63})*$")


class ShimDiskError(Exception):
    """The image cannot be built or written for this request (tools or files missing, a bad server)."""


def mtools_missing() -> list[str]:
    """The mtools programs not on PATH (all three are needed to build the image)."""
    return [tool for tool in MTOOLS if shutil.which(tool) is None]


def tftp_server(server: str) -> str:
    """``server`` when it is an IPv4 address or a host name (it lands in a GRUB script); else ValueError."""
    try:
        return str(ipaddress.IPv4Address(server))
    except ValueError:
        if _HOSTNAME.match(server):
            return server
    raise ValueError(f"not an IPv4 address or a host name: {server[:64]!r}")


def grub_config(server: str, mac: MacAddress | None) -> str:
    """The image's ``grub/grub.cfg``: network by DHCP, then the machine's config from ``server`` by TFTP.

    With ``mac`` None (an image URL that names no machine, as a site's DHCP server may hand out) GRUB
    takes the MAC of the first card its DHCP configured, ``$net_efinet0_dhcp_mac``: right for machines
    with one NIC or that boot from their first one; netboot's own DHCP always names the MAC.
    """
    host = tftp_server(server)
    name = mac.colon if mac is not None else "$net_efinet0_dhcp_mac"
    per_mac = f"(tftp,{host})/{GRUB_CONFIG}-01-{name}"
    return (
        "# netboot: shim-grub chain over UEFI HTTP Boot. This GRUB started from the RAM disk the firmware\n"
        "# fetched; it has no http, so it configures the network itself and reads the rest over TFTP.\n"
        "# configfile, not source: GRUB shows a config's menu when that config ends, and this one must not\n"
        "# end first; it comes back here only when the machine's config cannot be read.\n"
        "net_bootp\n"
        f'configfile "{per_mac}"\n'
        f'echo "netboot: could not read {per_mac}; leaving for the next boot entry"\n'
        "sleep 10\n"
        "exit\n"
    )


def _slot(text: str) -> bytes:
    """``text`` padded with a comment to exactly :data:`SLOT_SIZE` bytes."""
    data = text.encode()
    room = SLOT_SIZE - len(data) - 2  # "#" ... "\n"
    if room < 0:
        raise ShimDiskError(f"the image's grub.cfg is {len(data)} bytes, more than its {SLOT_SIZE} slot")
    return data + b"#" + b" " * room + b"\n"


#: the template's config: bytes that cannot occur in shim or GRUB, to find the slot by
_PLACEHOLDER = _slot("# <netboot shim-grub config slot>\n")


def disk_contents(files: Mapping[str, Path]) -> tuple[str, ...]:
    """The loader files an image built from ``files`` carries (shim and GRUB, MokManager when found)."""
    return tuple(n for n in (SHIM_BOOT_FILE, GRUB_FILE, MOKMANAGER) if n in files)


class ShimDisk:
    """Builds the HTTP Boot image from the found loader files (served name -> path, as
    :attr:`netboot.loaders.Loaders.paths`) and writes one per machine."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self._files = dict(files)
        self._lock = threading.Lock()
        self._template: bytes | None = None
        self._offset = 0
        #: the (mtime, size) of the files the template was built from: an upgraded shim (they carry
        #: revocations) or GRUB is in the next image, as it is in the next TFTP download
        self._built_from: tuple[tuple[int, int], ...] = ()

    def image(self, server: str, mac: MacAddress | None) -> bytes:
        """The disk image for ``mac`` (None: the generic one), its config naming ``server``.

        ValueError for a ``server`` :func:`tftp_server` refuses; ShimDiskError when it cannot be built."""
        config = _slot(grub_config(server, mac))
        template, offset = self._built()
        return template[:offset] + config + template[offset + SLOT_SIZE:]

    def _built(self) -> tuple[bytes, int]:
        with self._lock:
            sources = self._signature()
            if self._template is None or sources != self._built_from:
                template = self._build()
                found = template.find(_PLACEHOLDER)
                if found < 0 or template.count(_PLACEHOLDER) != 1:
                    raise ShimDiskError("the config slot is not one contiguous span in the built image")
                self._template, self._offset, self._built_from = template, found, sources
            return self._template, self._offset

    def _signature(self) -> tuple[tuple[int, int], ...]:
        try:
            stats = [self._files[n].stat() for n in disk_contents(self._files)]
        except OSError as exc:  # removed by an upgrade in progress: the build says what is missing
            raise ShimDiskError(f"cannot read a loader for the image: {exc}") from None
        return tuple((st.st_mtime_ns, st.st_size) for st in stats)

    def _build(self) -> bytes:
        lacking = [n for n in (SHIM_BOOT_FILE, GRUB_FILE) if n not in self._files]
        if lacking:
            raise ShimDiskError(f"{', '.join(lacking)} not found: the image needs shim and GRUB")
        tools = mtools_missing()
        if tools:
            raise ShimDiskError(f"{', '.join(tools)} not found (apt-get install {MTOOLS_PACKAGE})")
        sources = {"EFI/BOOT/BOOTX64.EFI": self._files[SHIM_BOOT_FILE],
                   f"EFI/BOOT/{GRUB_FILE}": self._files[GRUB_FILE]}
        if MOKMANAGER in self._files:
            sources[f"EFI/BOOT/{MOKMANAGER}"] = self._files[MOKMANAGER]
        payload = sum(p.stat().st_size for p in sources.values())
        # the files plus room for the FAT, the directories and the slot; mformat picks FAT12 or FAT16
        megabytes = payload // (1 << 20) + 3
        with tempfile.TemporaryDirectory(prefix="netboot-shimdisk-") as tmp:
            disk, config = Path(tmp) / "disk.img", Path(tmp) / "grub.cfg"
            config.write_bytes(_PLACEHOLDER)
            sources[GRUB_CONFIG] = config
            _mtools(["mformat", "-i", str(disk), "-C", "-T", str(megabytes * 2048), "-h", "64", "-s", "32",
                     "-v", "NETBOOT", "::"])
            _mtools(["mmd", "-i", str(disk), "::/EFI", "::/EFI/BOOT", "::/grub"])
            for inside, source in sources.items():
                _mtools(["mcopy", "-i", str(disk), str(source), f"::/{inside}"])
            return disk.read_bytes()


def _mtools(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise ShimDiskError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShimDiskError(f"{argv[0]} failed: {exc}") from None

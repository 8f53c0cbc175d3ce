"""A next boot device that says it was reached: a BIOS boot sector and a UEFI application, each writing a
marker line to the first serial port (COM1, I/O port 0x3f8) and halting.

Both are a few bytes of machine code written here, so a test needs no toolchain, no installed OS and no
disk tools: the BIOS disk is a raw image whose MBR is the boot sector, the UEFI disk is a directory that
QEMU's ``vvfat`` driver presents as a FAT disk holding ``\\EFI\\BOOT\\BOOTX64.EFI`` (the removable-media
path every UEFI firmware boots without a boot entry of its own).

Under Secure Boot an unsigned program is refused, so :func:`write_signed_esp` lays the ESP out as an
installed Debian's instead: Debian's signed shim and GRUB, GRUB's config printing the marker.

Writing straight to the UART, rather than through the BIOS or UEFI console, makes the marker arrive in the
serial log byte for byte, with no terminal escapes around it, from either firmware.
"""

from __future__ import annotations

import struct
from pathlib import Path

COM1 = 0x3F8

# The loop both programs run, after pointing SI/RSI at the message:
#     mov dx, 0x3f8 ; cld
#   next: lodsb ; test al, al ; jz done ; out dx, al ; jmp next
#   done: hlt ; jmp done
_PRINT_AND_HALT = bytes.fromhex("fc ac 84c0 7403 ee ebf8 f4 ebfd")
_MOV_DX_COM1 = bytes.fromhex("ba") + struct.pack("<H", COM1)


def boot_sector(marker: str) -> bytes:
    """A 512-byte MBR (BIOS loads it at 0000:7c00 in real mode) that prints ``marker`` and halts."""
    load_address = 0x7C00
    # cli ; xor ax, ax ; mov ds, ax ; mov si, msg ; then the loop (the message follows the code)
    head = bytes.fromhex("fa 31c0 8ed8 be")
    code_len = len(head) + 2 + len(_MOV_DX_COM1) + len(_PRINT_AND_HALT)
    code = head + struct.pack("<H", load_address + code_len) + _MOV_DX_COM1 + _PRINT_AND_HALT
    text = (marker + "\r\n").encode("ascii") + b"\0"
    body = code + text
    if len(body) > 446:  # the partition table starts at 446; this sector has none, but keep it clear
        raise ValueError(f"marker too long for a boot sector: {marker!r}")
    return body.ljust(510, b"\0") + b"\x55\xaa"


def write_bios_disk(path: Path, marker: str, size: int = 1 << 20) -> Path:
    """A raw disk image of ``size`` bytes whose first sector is :func:`boot_sector`."""
    path.write_bytes(boot_sector(marker).ljust(size, b"\0"))
    return path


def efi_application(marker: str) -> bytes:
    """A PE32+ EFI application (x86-64) that prints ``marker`` on COM1 and halts.

    One section holds code and message; the code is position independent (RIP-relative), so the image
    needs no relocations and the firmware may load it anywhere (the "relocations stripped" flag stays
    clear, which is what lets EDK2's loader place it at an address other than ``ImageBase``).
    """
    # lea rsi, [rip + msg] ; mov dx, 0x3f8 (with the 16-bit operand prefix) ; then the loop
    loop = b"\x66" + _MOV_DX_COM1 + _PRINT_AND_HALT
    code = bytes.fromhex("488d35") + struct.pack("<i", len(loop)) + loop
    text = code + (marker + "\r\n").encode("ascii") + b"\0"

    file_align, section_align = 0x200, 0x1000
    headers_size = file_align
    text_rva, text_raw = section_align, headers_size
    raw_size = -(-len(text) // file_align) * file_align
    image_size = text_rva + -(-len(text) // section_align) * section_align

    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, len(dos))  # e_lfanew: the PE header follows at once
    machine_amd64, characteristics = 0x8664, 0x0002 | 0x0020  # executable image, large address aware
    optional_size = 112 + 16 * 8  # PE32+ fixed fields plus 16 data directories
    coff = struct.pack("<HHIIIHH", machine_amd64, 1, 0, 0, 0, optional_size, characteristics)
    subsystem_efi_application = 10
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,  # PE32+
        0, 0,  # linker version
        raw_size, 0, 0,  # size of code, of initialised and uninitialised data
        text_rva,  # entry point: the first byte of .text
        text_rva,  # base of code
        0x10000000,  # image base (any: the image is position independent)
        section_align, file_align,
        0, 0, 0, 0, 0, 0,  # OS, image and subsystem versions
        0,  # Win32VersionValue
        image_size, headers_size,
        0,  # checksum (UEFI does not check it)
        subsystem_efi_application,
        0,  # DLL characteristics
        0x100000, 0x1000, 0x100000, 0x1000,  # stack and heap reserve/commit (unused by UEFI)
        0,  # loader flags
        16,  # number of data directories, all empty: no imports, exports or relocations
    ) + bytes(16 * 8)
    section = struct.pack(
        "<8sIIIIIIHHI",
        b".text",
        len(text), text_rva,  # virtual size and address
        raw_size, text_raw,  # size and offset in the file
        0, 0, 0, 0,  # relocations and line numbers
        0x60000020,  # code, executable, readable
    )
    headers = bytes(dos) + b"PE\0\0" + coff + optional + section
    assert len(headers) <= headers_size
    return headers.ljust(headers_size, b"\0") + text.ljust(raw_size, b"\0")


def write_esp(directory: Path, marker: str) -> Path:
    """A directory laid out as an EFI system partition: ``EFI/BOOT/BOOTX64.EFI`` = :func:`efi_application`."""
    boot = directory / "EFI" / "BOOT"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "BOOTX64.EFI").write_bytes(efi_application(marker))
    return directory


def disk_args(
    firmware: str, workdir: Path, marker: str, bootindex: int = 2, *, signed: bool = False
) -> list[str]:
    """QEMU arguments for a virtio disk that boots to ``marker``, after the NIC (``bootindex`` 1).

    ``netboot.qemu.VmSpec.disk`` takes a qcow2 image with no boot index; this disk is raw (or vvfat) and
    placed in the boot order explicitly, so the firmware's fall-through from the NIC is to this disk.
    ``signed``: the UEFI disk is :func:`write_signed_esp`, which a Secure Boot firmware accepts.
    """
    if firmware == "bios":
        drive = f"file={write_bios_disk(workdir / 'local-disk.img', marker)},format=raw"
    else:
        # vvfat: the directory as a read-only FAT disk with a partition table (no mkfs, no mtools)
        esp = write_signed_esp(workdir / "esp", marker) if signed else write_esp(workdir / "esp", marker)
        drive = f"file=fat:{esp},format=raw,readonly=on"
    return [
        "-drive",
        f"if=none,id=localdisk,{drive}",
        "-device",
        f"virtio-blk-pci,drive=localdisk,bootindex={bootindex}",
    ]


#: Debian's Microsoft-signed shim and its signed (non-network) GRUB, for a Secure Boot local disk
SIGNED_SHIM = Path("/usr/lib/shim/shimx64.efi.signed")
SIGNED_GRUB = Path("/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")


def write_signed_esp(
    directory: Path, marker: str, shim: Path = SIGNED_SHIM, grub: Path = SIGNED_GRUB
) -> Path:
    """An EFI system partition that boots under Secure Boot to ``marker``, as an installed Debian does:
    Microsoft-signed shim (``EFI/debian/shimx64.efi``, and as the removable ``EFI/BOOT/BOOTX64.EFI``),
    Debian's signed GRUB beside it, whose ``grub.cfg`` prints ``marker`` and waits. GRUB reads its config
    unverified, so the marker needs no signature of its own; everything that runs is signed."""
    config = f'echo "{marker}"\nsleep 600\n'
    for vendor, loader in (("debian", "shimx64.efi"), ("BOOT", "BOOTX64.EFI")):
        where = directory / "EFI" / vendor
        where.mkdir(parents=True, exist_ok=True)
        (where / loader).write_bytes(shim.read_bytes())
        (where / "grubx64.efi").write_bytes(grub.read_bytes())
        (where / "grub.cfg").write_text(config)
    return directory

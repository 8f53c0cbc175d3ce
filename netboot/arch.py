"""The one table of client architectures (RFC 4578 option 93, IANA "Processor Architecture Types").

Every place that needs to know what a client is (classifier, decision, events, UI) uses :class:`Arch`
and :func:`arch_from_code`, so a new firmware type is one row here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Arch(enum.Enum):
    BIOS = "bios"
    UEFI_IA32 = "uefi-ia32"
    UEFI_X64 = "uefi-x64"
    UEFI_ARM32 = "uefi-arm32"
    UEFI_ARM64 = "uefi-arm64"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ArchCode:
    """One IANA option-93 code: the architecture and whether it is the HTTP-boot variant."""

    arch: Arch
    http: bool


#: IANA processor architecture types (option 93) that netboot understands.
ARCH_CODES: dict[int, ArchCode] = {
    0: ArchCode(Arch.BIOS, http=False),
    6: ArchCode(Arch.UEFI_IA32, http=False),
    7: ArchCode(Arch.UEFI_X64, http=False),
    9: ArchCode(Arch.UEFI_X64, http=False),  # "EFI BC": what some firmware sends for x64
    10: ArchCode(Arch.UEFI_ARM32, http=False),
    11: ArchCode(Arch.UEFI_ARM64, http=False),
    15: ArchCode(Arch.UEFI_IA32, http=True),
    16: ArchCode(Arch.UEFI_X64, http=True),
    18: ArchCode(Arch.UEFI_ARM32, http=True),
    19: ArchCode(Arch.UEFI_ARM64, http=True),
}


def arch_from_code(code: int | None) -> ArchCode:
    """Map an option-93 value to an :class:`ArchCode`; unknown codes give ``Arch.UNKNOWN``."""
    if code is None:
        return ArchCode(Arch.UNKNOWN, http=False)
    return ARCH_CODES.get(code, ArchCode(Arch.UNKNOWN, http=False))

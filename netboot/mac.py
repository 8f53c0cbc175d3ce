"""The one MAC address type.

Admins, firmware and tools spell a MAC many ways (``52:54:00:AB:CD:EF``, ``52-54-00-ab-cd-ef``,
``5254.00ab.cdef``, ``525400abcdef``, pxelinux's ``01-52-54-00-ab-cd-ef``). Everything inside netboot
holds a :class:`MacAddress`, so a system registered in one spelling is found by a packet in another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEX12 = re.compile(r"^[0-9a-f]{12}$")
#: the spelling firmware, iPXE and netboot's own URLs use: checked first, by one match
_COLON = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


class InvalidMac(ValueError):
    """Raised for text that is not a 48-bit MAC address in any accepted spelling."""


@dataclass(frozen=True, order=True, slots=True)
class MacAddress:
    """A 48-bit Ethernet address, stored as 12 lowercase hex digits."""

    hex: str
    #: ``52:54:00:ab:cd:ef``: the spelling netboot prints and stores (made once: every URL, log line and
    #: template of a request spells it)
    colon: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _HEX12.match(self.hex):
            raise InvalidMac(f"not a MAC address: {self.hex!r}")
        h = self.hex
        object.__setattr__(self, "colon", f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}")

    @classmethod
    def parse(cls, text: str) -> MacAddress:
        """Accept colon, dash, dot (Cisco), bare, and pxelinux ``01-`` spellings, any case."""
        if _COLON.fullmatch(text):
            return cls(text.replace(":", "").lower())
        raw = text.strip().lower()
        if re.fullmatch(r"01-([0-9a-f]{2}-){5}[0-9a-f]{2}", raw):
            raw = raw[3:]
        if re.fullmatch(r"([0-9a-f]{1,2}[:-]){5}[0-9a-f]{1,2}", raw):
            parts = re.split(r"[:-]", raw)
            digits = "".join(p.zfill(2) for p in parts)
        elif re.fullmatch(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", raw):
            digits = raw.replace(".", "")
        else:
            digits = raw
        if not _HEX12.match(digits):
            raise InvalidMac(f"not a MAC address: {text!r} (use e.g. 52:54:00:12:34:56)")
        return cls(digits)

    @classmethod
    def from_bytes(cls, data: bytes) -> MacAddress:
        if len(data) != 6:
            raise InvalidMac(f"a MAC address is 6 bytes, got {len(data)}")
        return cls(data.hex())

    @property
    def packed(self) -> bytes:
        return bytes.fromhex(self.hex)

    @property
    def pxelinux(self) -> str:
        """``01-52-54-00-ab-cd-ef``: the name pxelinux asks for under ``pxelinux.cfg/``."""
        return "01-" + self.colon.replace(":", "-")

    def __str__(self) -> str:
        return self.colon

"""One DHCP/BOOTP message as a frozen dataclass: :class:`DhcpPacket`, its checks and its typed accessors.

No wire format here (that is :mod:`netboot.protocol.dhcp`, which callers import this class from): the
fixed header as fields and the options as ``(code, value)`` pairs, each code once, in wire order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from netboot.mac import MacAddress
from netboot.protocol.dhcp_options import (
    BROADCAST_FLAG,
    ZERO_IP,
    MessageType,
    Op,
    Opt,
    read_ip,
    read_text,
    read_u16,
    read_u32,
)

__all__ = ["DhcpPacket", "Options", "assemble"]

Options = tuple[tuple[int, bytes], ...]

#: PAD (0), END (255) and OVERLOAD (52) are framing: the codec writes them, a packet never holds them
_SETTABLE_CODES = frozenset(range(1, 255)) - {int(Opt.OVERLOAD)}
_MESSAGE_TYPES = {int(t): t for t in MessageType}


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpPacket:
    """One DHCP/BOOTP message.

    ``options`` holds each option once, in the order it first appeared on the wire, with the pieces of a
    long option joined (RFC 3396). PAD, END and OVERLOAD (52) are framing and never appear here; when a
    received packet used overload, its options from ``file``/``sname`` are merged in and those fields are
    empty. ``sname`` and ``file`` carry no NUL padding. ``chaddr`` is always 16 bytes (shorter input is
    NUL-padded), so ``DhcpPacket(chaddr=mac.packed, ...)`` works.
    """

    op: Op = Op.BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = ZERO_IP
    yiaddr: IPv4Address = ZERO_IP
    siaddr: IPv4Address = ZERO_IP
    giaddr: IPv4Address = ZERO_IP
    chaddr: bytes = bytes(16)
    sname: bytes = b""
    file: bytes = b""
    options: Options = ()
    # Derived lookup table: accessors are called several times per packet, a dict beats scanning a tuple.
    _index: dict[int, bytes] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index = dict(self.options)
        if len(index) != len(self.options):
            codes = [code for code, _ in self.options]
            dup = next(code for code in codes if codes.count(code) > 1)
            raise ValueError(f"option {dup} appears twice; join its values into one (RFC 3396)")
        if not _SETTABLE_CODES.issuperset(index):
            bad = sorted(set(index) - _SETTABLE_CODES)
            raise ValueError(f"option codes {bad} cannot be set: PAD, END and OVERLOAD (52) are framing")
        object.__setattr__(self, "_index", index)
        if len(self.chaddr) != 16:
            if len(self.chaddr) > 16:
                raise ValueError(f"chaddr is at most 16 bytes, got {len(self.chaddr)}")
            object.__setattr__(self, "chaddr", self.chaddr.ljust(16, b"\0"))

    # -- generic access ----------------------------------------------------------------------------

    def get(self, code: int) -> bytes | None:
        """The value of option ``code`` (all its RFC 3396 pieces joined), or None when absent."""
        return self._index.get(code)

    def __contains__(self, code: int) -> bool:
        return code in self._index

    def replace(self, **changes: Any) -> DhcpPacket:
        """A copy with some fields changed (:func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def with_options(self, changes: Mapping[int, bytes | None]) -> DhcpPacket:
        """A copy with options set (in place when present, else appended) or removed (value None)."""
        updated = dict(self.options)
        for code, value in changes.items():
            if value is None:
                updated.pop(code, None)
            else:
                updated[code] = value
        return dataclasses.replace(self, options=tuple(updated.items()))

    # -- header helpers ----------------------------------------------------------------------------

    @property
    def mac(self) -> MacAddress | None:
        """The client's Ethernet address, or None when ``chaddr`` is not a 6-byte Ethernet address."""
        if self.htype != 1 or self.hlen != 6:
            return None
        return MacAddress(self.chaddr[:6].hex())

    @property
    def broadcast(self) -> bool:
        """True when the client asked for a broadcast reply (OVMF does; it cannot take unicast yet)."""
        return bool(self.flags & BROADCAST_FLAG)

    # -- typed option helpers: None when absent or malformed, never an exception -------------------

    @property
    def message_type(self) -> MessageType | None:
        value = self._index.get(Opt.MESSAGE_TYPE)
        if value is None or len(value) != 1:
            return None
        return _MESSAGE_TYPES.get(value[0])

    @property
    def requested_ip(self) -> IPv4Address | None:
        return read_ip(self._index.get(Opt.REQUESTED_IP))

    @property
    def server_id(self) -> IPv4Address | None:
        return read_ip(self._index.get(Opt.SERVER_ID))

    @property
    def client_id(self) -> bytes | None:
        """Option 61 as sent (type byte first; ``01`` + MAC for Ethernet clients)."""
        return self._index.get(Opt.CLIENT_ID)

    @property
    def vendor_class(self) -> str | None:
        """Option 60 as text, e.g. ``PXEClient:Arch:00007:UNDI:003000`` (latin-1: every byte maps)."""
        return read_text(self._index.get(Opt.VENDOR_CLASS))

    @property
    def hostname(self) -> str | None:
        return read_text(self._index.get(Opt.HOSTNAME))

    @property
    def param_request_list(self) -> tuple[int, ...]:
        """Option 55 codes in the client's order; empty when absent."""
        return tuple(self._index.get(Opt.PARAM_REQUEST, b""))

    @property
    def max_message_size(self) -> int | None:
        """Option 57 as sent. Clients disagree on what it counts (see
        :func:`netboot.protocol.dhcp.encode`)."""
        return read_u16(self._index.get(Opt.MAX_SIZE))

    @property
    def lease_time(self) -> int | None:
        return read_u32(self._index.get(Opt.LEASE_TIME))


# The decoder builds packets without __init__: its values are already checked, and a frozen dataclass's
# __init__ (object.__setattr__ per field, then __post_init__) was 40% of decode time. The slot descriptors'
# own setters do the same stores about three times faster.
_SLOT_SETTERS = tuple(DhcpPacket.__dict__[f.name].__set__ for f in dataclasses.fields(DhcpPacket))


def assemble(values: tuple[object, ...]) -> DhcpPacket:
    """A :class:`DhcpPacket` from all its slot values in field order (``_index`` last), UNCHECKED.

    For the decoder only, whose values already satisfy every rule ``__post_init__`` checks (each option
    code once and settable, ``_index`` the dict of ``options``, ``chaddr`` 16 bytes).
    """
    packet: DhcpPacket = object.__new__(DhcpPacket)
    for setter, value in zip(_SLOT_SETTERS, values, strict=True):
        setter(packet, value)
    return packet

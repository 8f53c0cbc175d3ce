"""DHCP/BOOTP messages (RFC 2131, 2132, 3396) as bytes <-> :class:`DhcpPacket`.

Sans-IO: no sockets, no logging, no clock. :func:`decode` raises :class:`DecodeError` and nothing else for
any byte string, so a transport drops a bad datagram with one ``except DecodeError``. :func:`encode` raises
:class:`ValueError` for a packet it cannot represent: that is a bug in the caller, not bad input.

The model is deliberately flat: the fixed header as fields and the options as ``(code, value)`` pairs in
wire order. Framing is the codec's business, not the packet's, so decode removes PAD, END and the overload
option (52) and joins the pieces of a long option (RFC 3396); encode splits, overloads and pads again.
A packet therefore round-trips as ``decode(encode(p)) == p`` whatever the wire layout was.

This module is on the server's hot path (thousands of DORAs per second in CPython): the header is one
precompiled :class:`struct.Struct`, options are scanned by index over ``bytes`` and collected in one dict.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address
from typing import Any

from netboot.mac import MacAddress
from netboot.protocol.errors import DecodeError

__all__ = [
    "BROADCAST_FLAG",
    "MAGIC_COOKIE",
    "MIN_PACKET_SIZE",
    "DhcpPacket",
    "MessageType",
    "Op",
    "Opt",
    "decode",
    "encode",
    "pack_ips",
    "pack_u16",
    "pack_u32",
]


class Op(IntEnum):
    """BOOTP ``op`` (RFC 2131 section 2)."""

    BOOTREQUEST = 1
    BOOTREPLY = 2


class MessageType(IntEnum):
    """DHCP message type, option 53 (RFC 2132 section 9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Opt(IntEnum):
    """Option codes netboot reads or writes (RFC 2132 unless noted)."""

    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    INTERFACE_MTU = 26
    BROADCAST = 28
    NTP_SERVERS = 42
    VENDOR_SPECIFIC = 43
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAM_REQUEST = 55
    MESSAGE = 56
    MAX_SIZE = 57
    RENEWAL_T1 = 58
    REBINDING_T2 = 59
    VENDOR_CLASS = 60
    CLIENT_ID = 61
    TFTP_SERVER = 66
    BOOTFILE = 67
    USER_CLASS = 77  # RFC 3004
    RAPID_COMMIT = 80  # RFC 4039
    RELAY_AGENT = 82  # RFC 3046
    CLIENT_ARCH = 93  # RFC 4578
    CLIENT_NDI = 94  # RFC 4578
    UUID_GUID = 97  # RFC 4578
    DOMAIN_SEARCH = 119  # RFC 3397
    CLASSLESS_ROUTES = 121  # RFC 3442
    IPXE_ENCAP = 175  # iPXE's private encapsulated options
    END = 255


#: RFC 2131 section 3: the first four octets of the options field.
MAGIC_COOKIE = b"\x63\x82\x53\x63"
#: ``flags`` bit asking the server to broadcast its reply (RFC 2131 section 4.1).
BROADCAST_FLAG = 0x8000
#: BOOTP's minimum message (RFC 951 has a 64-byte vendor area): some PXE ROMs drop anything shorter.
MIN_PACKET_SIZE = 300
#: RFC 2131 section 2: every client accepts a 576-byte IP datagram.
MIN_MAX_SIZE = 576

# op htype hlen hops | xid | secs flags | ciaddr yiaddr siaddr giaddr | chaddr sname file | cookie
_HEADER = struct.Struct("!BBBBIHHIIII16s64s128s4s")
_FIXED_LEN = 236  # the BOOTP header without the cookie
_OPTIONS_AT = _HEADER.size  # 240
_SNAME_AT = 44
_FILE_AT = 108
_IP_UDP_HEADERS = 28  # IPv4 (20) + UDP (8): option 57 counts them, the DHCP payload does not
_OVERLOAD_FILE = 1  # option 52 values are bit sets of these
_OVERLOAD_SNAME = 2
_OVERLOAD = int(Opt.OVERLOAD)  # plain ints on the hot path: an enum member lookup costs 3x a global
_MESSAGE_TYPE = int(Opt.MESSAGE_TYPE)
_SETTABLE_CODES = frozenset(range(1, 255)) - {_OVERLOAD}
_ZERO_IP = IPv4Address(0)
_OPS = {1: Op.BOOTREQUEST, 2: Op.BOOTREPLY}
_MESSAGE_TYPES = {int(t): t for t in MessageType}
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

Options = tuple[tuple[int, bytes], ...]


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
    ciaddr: IPv4Address = _ZERO_IP
    yiaddr: IPv4Address = _ZERO_IP
    siaddr: IPv4Address = _ZERO_IP
    giaddr: IPv4Address = _ZERO_IP
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
        return _ip_option(self._index.get(Opt.REQUESTED_IP))

    @property
    def server_id(self) -> IPv4Address | None:
        return _ip_option(self._index.get(Opt.SERVER_ID))

    @property
    def client_id(self) -> bytes | None:
        """Option 61 as sent (type byte first; ``01`` + MAC for Ethernet clients)."""
        return self._index.get(Opt.CLIENT_ID)

    @property
    def vendor_class(self) -> str | None:
        """Option 60 as text, e.g. ``PXEClient:Arch:00007:UNDI:003000`` (latin-1: every byte maps)."""
        return _text_option(self._index.get(Opt.VENDOR_CLASS))

    @property
    def hostname(self) -> str | None:
        return _text_option(self._index.get(Opt.HOSTNAME))

    @property
    def param_request_list(self) -> tuple[int, ...]:
        """Option 55 codes in the client's order; empty when absent."""
        return tuple(self._index.get(Opt.PARAM_REQUEST, b""))

    @property
    def max_message_size(self) -> int | None:
        """Option 57 as sent. Clients disagree on what it counts (see :func:`encode`)."""
        value = self._index.get(Opt.MAX_SIZE)
        if value is None or len(value) != 2:
            return None
        return int(_U16.unpack(value)[0])

    @property
    def lease_time(self) -> int | None:
        value = self._index.get(Opt.LEASE_TIME)
        if value is None or len(value) != 4:
            return None
        return int(_U32.unpack(value)[0])


# decode() builds packets without __init__: its values are already checked, and a frozen dataclass's
# __init__ (object.__setattr__ per field, then __post_init__) was 40% of decode time. The slot descriptors'
# own setters do the same stores about three times faster.
_SLOT_SETTERS = tuple(DhcpPacket.__dict__[f.name].__set__ for f in dataclasses.fields(DhcpPacket))


def _assemble(values: tuple[object, ...]) -> DhcpPacket:
    """A :class:`DhcpPacket` from all its slot values in field order (``_index`` last), unchecked."""
    packet: DhcpPacket = object.__new__(DhcpPacket)
    for setter, value in zip(_SLOT_SETTERS, values, strict=True):
        setter(packet, value)
    return packet


def _ip_option(value: bytes | None) -> IPv4Address | None:
    if value is None or len(value) != 4:
        return None
    return IPv4Address(value)


def _text_option(value: bytes | None) -> str | None:
    """Option text without the trailing NULs some senders add (dnsmasq NUL-terminates option 67)."""
    if value is None:
        return None
    return value.rstrip(b"\0").decode("latin-1")


def _ip(value: int) -> IPv4Address:
    # Clients send 0.0.0.0 in most address fields: share one object instead of building four.
    return _ZERO_IP if value == 0 else IPv4Address(value)


def _c_string(raw: bytes) -> bytes:
    """``sname``/``file`` are NUL-terminated: whatever follows the first NUL is padding or junk."""
    end = raw.find(0)
    return raw if end < 0 else raw[:end]


# -- decode ----------------------------------------------------------------------------------------


def decode(data: bytes) -> DhcpPacket:
    """Parse one DHCP message (a UDP payload). Raises :class:`DecodeError`, and only that, if malformed.

    Tolerated because real clients do it: a missing END when every option parsed cleanly, and anything
    after END (padding, junk). Not tolerated: a header shorter than 240 bytes, a wrong magic cookie,
    ``hlen`` > 16, an unknown ``op``, an option whose length runs past its area, a bad overload option.
    """
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < _FIXED_LEN:
        raise DecodeError(f"truncated DHCP header: {size} bytes, need at least {_FIXED_LEN}")
    if size < _OPTIONS_AT:
        raise DecodeError(f"no magic cookie: packet is {size} bytes, the cookie ends at {_OPTIONS_AT}")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
     chaddr, sname, file, cookie) = _HEADER.unpack_from(data)  # fmt: skip
    if cookie != MAGIC_COOKIE:
        raise DecodeError(f"bad magic cookie {cookie.hex()} at offset {_FIXED_LEN} (want 63825363)")
    op_enum = _OPS.get(op)
    if op_enum is None:
        raise DecodeError(f"op {op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)")
    if hlen > 16:
        raise DecodeError(f"hlen {hlen} is longer than the 16-byte chaddr field")

    found: dict[int, bytes] = {}
    _scan_options(data, _OPTIONS_AT, size, found, "packet")
    overload = found.pop(_OVERLOAD, None)
    if overload is not None:
        fields = _overload_fields(overload)
        # RFC 3396 section 7 (and RFC 2131 4.1): options field, then file, then sname.
        if fields & _OVERLOAD_FILE:
            _scan_options(data, _FILE_AT, _FILE_AT + 128, found, "file field")
            file = b""
        if fields & _OVERLOAD_SNAME:
            _scan_options(data, _SNAME_AT, _SNAME_AT + 64, found, "sname field")
            sname = b""
        found.pop(_OVERLOAD, None)  # only meaningful in the options field itself

    return _assemble(
        (op_enum, htype, hlen, hops, xid, secs, flags, _ip(ciaddr), _ip(yiaddr), _ip(siaddr), _ip(giaddr),
         chaddr, _c_string(sname), _c_string(file), tuple(found.items()), found)
    )  # fmt: skip


def _scan_options(data: bytes, start: int, end: int, found: dict[int, bytes], area: str) -> None:
    """Collect the options in ``data[start:end]`` into ``found``, joining repeated codes (RFC 3396)."""
    at = start
    try:
        while at < end:
            code = data[at]
            if code == 0:  # PAD
                at += 1
                continue
            if code == 255:  # END
                return
            length = data[at + 1]  # IndexError only at the very end of the packet: see below
            value_end = at + 2 + length
            if value_end > end:
                raise DecodeError(f"option {code} length {length} runs past end of {area} at offset {at}")
            value = data[at + 2 : value_end]
            previous = found.get(code)
            found[code] = value if previous is None else previous + value
            at = value_end
    except IndexError:
        raise DecodeError(f"option {data[at]} at offset {at} has no length byte: {area} ends") from None


def _overload_fields(value: bytes) -> int:
    if len(value) != 1 or not 1 <= value[0] <= 3:
        raise DecodeError(f"option 52 (overload) must be one byte 1, 2 or 3, got {value.hex() or 'nothing'}")
    return value[0]


# -- encode ----------------------------------------------------------------------------------------


def encode(packet: DhcpPacket, *, max_size: int = MIN_MAX_SIZE) -> bytes:
    """Serialise ``packet``: message type first, long options split (RFC 3396), END, padded to 300 bytes.

    ``max_size`` is the largest IP datagram the client accepts: pass its option 57. RFC 2131 section 2
    defines the 576-byte minimum as an IP datagram, so 28 bytes of IP and UDP headers are subtracted for
    the DHCP payload; clients that already subtracted them (iPXE and OVMF send 1472) just lose 28 bytes.
    Values below 576 are raised to 576, the RFC 2132 minimum. When the options do not fit, ``file`` and
    then ``sname`` carry options (overload, option 52) if they are empty; otherwise :class:`ValueError`.
    """
    options = _wire_order(packet)
    body = bytearray()
    for code, value in options:
        length = len(value)
        if length <= 255:
            body.append(code)
            body.append(length)
            body += value
        else:
            body += b"".join(_pieces(code, value))
    room = max(max_size, MIN_MAX_SIZE) - _IP_UDP_HEADERS - _OPTIONS_AT - 1  # 1 byte kept for END
    sname, file = packet.sname, packet.file
    if len(body) > room:
        body, sname, file = _overload(options, room, sname=sname, file=file)
    body.append(255)
    short = MIN_PACKET_SIZE - _OPTIONS_AT - len(body)
    if short > 0:
        body += bytes(short)
    return _pack_header(packet, sname, file) + body


def _wire_order(packet: DhcpPacket) -> Options:
    """The options with the message type first: RFC 2131 does not require it, but some ROMs assume it."""
    options = packet.options
    if options and options[0][0] != _MESSAGE_TYPE and _MESSAGE_TYPE in packet:
        rest = tuple(option for option in options if option[0] != _MESSAGE_TYPE)
        options = ((_MESSAGE_TYPE, packet._index[_MESSAGE_TYPE]), *rest)
    return options


def _pieces(code: int, value: bytes) -> list[bytes]:
    """``value`` as wire options of at most 255 bytes each, same code (RFC 3396 section 5)."""
    if len(value) <= 255:
        return [bytes((code, len(value))) + value]
    pieces = []
    for at in range(0, len(value), 255):
        piece = value[at : at + 255]
        pieces.append(bytes((code, len(piece))) + piece)
    return pieces


def _pack_header(packet: DhcpPacket, sname: bytes, file: bytes) -> bytes:
    if len(sname) > 64:
        raise ValueError(f"sname is {len(sname)} bytes, the field holds 64")
    if len(file) > 128:
        raise ValueError(f"file is {len(file)} bytes, the field holds 128")
    try:
        return _HEADER.pack(
            packet.op, packet.htype, packet.hlen, packet.hops, packet.xid, packet.secs, packet.flags,
            int(packet.ciaddr), int(packet.yiaddr), int(packet.siaddr), int(packet.giaddr),
            packet.chaddr, sname, file, MAGIC_COOKIE,
        )  # fmt: skip
    except struct.error as exc:
        raise ValueError(f"cannot encode DHCP header: {exc}") from exc


def _overload(options: Options, room: int, *, sname: bytes, file: bytes) -> tuple[bytearray, bytes, bytes]:
    """Spread the options over the options field, then ``file``, then ``sname`` (RFC 2131 4.1, 3396 7).

    Pieces are placed in order and never move back to an earlier area, so the pieces of a long option are
    joined again in the right order. Option 52 goes right after the message type, in the options field;
    each overloaded field ends with END and is NUL-padded.
    """
    areas = [(0, room - 3)]  # (overload bit, capacity without END); 3 bytes for option 52 itself
    if not file:
        areas.append((_OVERLOAD_FILE, 127))
    if not sname:
        areas.append((_OVERLOAD_SNAME, 63))
    if len(areas) == 1:
        raise ValueError("options do not fit max_size and file and sname are both in use")

    pieces = [piece for code, value in options for piece in _pieces(code, value)]
    head = pieces[:1] if options and options[0][0] == _MESSAGE_TYPE else []
    filled: list[list[bytes]] = [[] for _ in areas]
    used = [sum(map(len, head)), *(0 for _ in areas[1:])]
    area = 0
    for piece in pieces[len(head) :]:
        while used[area] + len(piece) > areas[area][1]:
            area += 1
            if area == len(areas):
                raise ValueError("options do not fit max_size even with file and sname overloaded")
        filled[area].append(piece)
        used[area] += len(piece)

    bits = 0
    fields = {_OVERLOAD_FILE: file, _OVERLOAD_SNAME: sname}
    for (bit, capacity), content in zip(areas[1:], filled[1:], strict=True):
        if content:
            bits |= bit
            fields[bit] = (b"".join(content) + b"\xff").ljust(capacity + 1, b"\0")
    main = bytearray(b"".join(head))
    main += bytes((_OVERLOAD, 1, bits))
    main += b"".join(filled[0])
    return main, fields[_OVERLOAD_SNAME], fields[_OVERLOAD_FILE]


# -- option value helpers --------------------------------------------------------------------------


def pack_ips(*addresses: IPv4Address) -> bytes:
    """Addresses as an option value (router, DNS, server id...)."""
    return b"".join(address.packed for address in addresses)


def pack_u16(value: int) -> bytes:
    return _U16.pack(value)


def pack_u32(value: int) -> bytes:
    """A 32-bit option value (lease time, T1, T2)."""
    return _U32.pack(value)

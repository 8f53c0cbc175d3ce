"""DHCP/BOOTP messages (RFC 2131, 2132, 3396) as bytes <-> :class:`DhcpPacket`: the wire codec.

Sans-IO: no sockets, no logging, no clock. :func:`decode` raises :class:`DecodeError` and nothing else for
any byte string, so a transport drops a bad datagram with one ``except DecodeError``. :func:`encode` raises
:class:`ValueError` for a packet it cannot represent: that is a bug in the caller, not bad input.

The model is deliberately flat: the fixed header as fields and the options as ``(code, value)`` pairs in
wire order. Framing is the codec's business, not the packet's, so decode removes PAD, END and the overload
option (52) and joins the pieces of a long option (RFC 3396); encode splits, overloads and pads again.
A packet therefore round-trips as ``decode(encode(p)) == p`` whatever the wire layout was.

Three modules, one job each, and this one is where callers import all of them from: the numbers and option
values (:mod:`netboot.protocol.dhcp_options`), the packet dataclass (:mod:`netboot.protocol.dhcp_packet`),
and here the bytes.

This module is on the server's hot path (thousands of DORAs per second in CPython): the header is one
precompiled :class:`struct.Struct`, options are scanned by index over ``bytes`` and collected in one dict.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from netboot.protocol.dhcp_options import (
    BROADCAST_FLAG,
    MAGIC_COOKIE,
    MIN_MAX_SIZE,
    MIN_PACKET_SIZE,
    ZERO_IP,
    MessageType,
    Op,
    Opt,
    pack_ips,
    pack_u16,
    pack_u32,
)
from netboot.protocol.dhcp_packet import DhcpPacket, Options, assemble
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
_OPS = {1: Op.BOOTREQUEST, 2: Op.BOOTREPLY}


def _ip(value: int) -> IPv4Address:
    # Clients send 0.0.0.0 in most address fields: share one object instead of building four.
    return ZERO_IP if value == 0 else IPv4Address(value)


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

    return assemble(
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

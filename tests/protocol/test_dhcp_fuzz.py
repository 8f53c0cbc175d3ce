"""Property tests: decode refuses exactly the malformed inputs, and for the right reason; encode refuses
exactly the packets that cannot fit; whatever is accepted round-trips.

A DHCP server reads datagrams from anyone on the segment. A codec bug that raises IndexError or
struct.error would be a remote crash (or at least a lost packet with a traceback), so this is the
contract the transport relies on. A refusal is checked like an answer: a reference reader written here
from the RFCs, slow and plain, says for every generated input whether it must be refused and why, so a
codec that refuses too much (a valid packet dropped), too little, or for the wrong reason fails as surely
as one that crashes. Budgets are small so the suite stays well under ten seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from fuzz_targets import type_first
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from netboot.protocol.dhcp import MAGIC_COOKIE, DhcpPacket, Op, decode, encode
from netboot.protocol.errors import DecodeError
from netboot.protocol.pxe import parse_encapsulated, parse_ipxe, parse_user_class

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
FIXTURES = [path.read_bytes() for path in sorted(FIXTURE_DIR.glob("*.bin"))]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = bytes([1, 1, 6, 0]) + bytes(232) + MAGIC_COOKIE


# -- the reference reader --------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why an input must be refused: the kind of fault, and the pattern its error message must match."""

    kind: str
    pattern: str


def read_options(data: bytes, start: int, end: int, found: dict[int, bytes]) -> int | None:
    """RFC 2132 section 2 read byte by byte, into ``found``: PAD is one byte, END ends the area, any other
    code is followed by a length byte and that many bytes, all inside the area; a repeated code continues
    the value (RFC 3396). Returns the offset of the first option that does not fit, or None."""
    at = start
    while at < end:
        code = data[at]
        if code == 0:
            at += 1
            continue
        if code == 255:
            return None
        if at + 1 >= end or at + 2 + data[at + 1] > end:
            return at
        found[code] = found.get(code, b"") + data[at + 2 : at + 2 + data[at + 1]]
        at += 2 + data[at + 1]
    return None


def overrun(data: bytes, at: int, area: str) -> Refusal:
    """The refusal of the option at ``at``. Only at the very end of the datagram is its length byte
    missing; in the last byte of sname or file the next field's byte reads as a length that overruns."""
    if at + 1 >= len(data):
        return Refusal(area, rf"option {data[at]} at offset {at} has no length byte: {area} ends")
    return Refusal(area, rf"option {data[at]} length {data[at + 1]} runs past end of {area} at offset {at}")


def c_string(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def reference_decode(data: bytes) -> Refusal | dict[str, object]:
    """What decode must make of ``data`` (RFC 2131 section 2 and 4.1, RFC 2132 sections 2 and 9.3, RFC
    3396 section 7): the refusal, or the fields it must return."""
    if len(data) < 236:
        return Refusal("short", rf"truncated DHCP header: {len(data)} bytes, need at least 236")
    if len(data) < 240:
        return Refusal("short", rf"no magic cookie: packet is {len(data)} bytes, the cookie ends at 240")
    if data[236:240] != MAGIC_COOKIE:
        return Refusal("cookie", rf"bad magic cookie {data[236:240].hex()} at offset 236 \(want 63825363\)")
    if data[0] not in (1, 2):
        return Refusal("op", rf"op {data[0]} is neither BOOTREQUEST \(1\) nor BOOTREPLY \(2\)")
    if data[2] > 16:
        return Refusal("hlen", rf"hlen {data[2]} is longer than the 16-byte chaddr field")
    found: dict[int, bytes] = {}
    sname, file = data[44:108], data[108:236]
    if (at := read_options(data, 240, len(data), found)) is not None:
        return overrun(data, at, "packet")
    overload = found.pop(52, None)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            return Refusal(
                "overload",
                rf"option 52 \(overload\) must be one byte 1, 2 or 3, got "
                rf"{overload.hex() or 'nothing'}",
            )
        if overload[0] & 1:  # file first, then sname
            if (at := read_options(data, 108, 236, found)) is not None:
                return overrun(data, at, "file field")
            file = b""
        if overload[0] & 2:
            if (at := read_options(data, 44, 108, found)) is not None:
                return overrun(data, at, "sname field")
            sname = b""
        found.pop(52, None)  # an overload option inside file or sname means nothing
    return {
        "op": data[0],
        "htype": data[1],
        "hlen": data[2],
        "hops": data[3],
        "xid": data[4:8],
        "chaddr": data[28:44],
        "sname": c_string(sname),
        "file": c_string(file),
        "options": tuple(found.items()),
    }


def tally(outcome: str) -> None:
    """Count ``outcome`` in ``--hypothesis-show-statistics``: how the examples split between accepted and
    each kind of refusal shows whether a strategy still reaches the rules it is there for."""
    if currently_in_test_context():
        event(outcome)


def check_decode(data: bytes) -> DhcpPacket | None:
    """decode refuses ``data`` exactly when the reference does, with its reason; otherwise it returns the
    reference's fields, and the packet re-encodes to itself."""
    expected = reference_decode(data)
    try:
        packet = decode(data)
    except DecodeError as exc:
        assert isinstance(expected, Refusal), f"refused a valid packet: {exc}"
        assert re.fullmatch(expected.pattern, str(exc)), (str(exc), expected.pattern)
        tally(f"refused: {expected.kind}")
        return None
    assert not isinstance(expected, Refusal), f"accepted what must be refused: {expected.pattern}"
    got = {
        "op": int(packet.op),
        "htype": packet.htype,
        "hlen": packet.hlen,
        "hops": packet.hops,
        "xid": packet.xid.to_bytes(4, "big"),
        "chaddr": packet.chaddr,
        "sname": packet.sname,
        "file": packet.file,
        "options": packet.options,
    }
    assert got == expected
    assert decode(encode(packet, max_size=65535)) == type_first(packet)
    tally("accepted")
    return packet


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (HEADER[:235], "short"),
        (HEADER[:238], "short"),
        (HEADER[:236] + b"\x63\x82\x53\x00", "cookie"),
        (b"\x03" + HEADER[1:], "op"),
        (b"\x01\x01\x11" + HEADER[3:], "hlen"),
        (HEADER + b"\x0c\x05abc", "packet"),
        (HEADER + b"\x35\x01\x01\x0c", "packet"),
        (HEADER + b"\x34\x01\x04", "overload"),
        (HEADER + b"\x34\x01\x01\x34\x01\x01", "overload"),  # two pieces join to two bytes
        (HEADER + b"\x34\x00", "overload"),
        (HEADER[:108] + b"\x0c\x7f" + HEADER[110:] + b"\x34\x01\x01", "file field"),
        (
            HEADER[:235] + b"\x0c" + HEADER[236:] + b"\x34\x01\x01",
            "file field",
        ),  # length byte is the cookie's
        (HEADER[:107] + b"\x0c" + HEADER[108:] + b"\x34\x01\x02", "sname field"),
    ],
)
def test_the_reference_reader_refuses_what_it_must(data: bytes, kind: str) -> None:
    """The oracle itself, one input per fault: a reference that refused nothing would let every codec
    pass, so each of its refusals is shown to be one decode makes too, with the same message."""
    expected = reference_decode(data)
    assert isinstance(expected, Refusal) and expected.kind == kind, expected
    with pytest.raises(DecodeError) as refused:
        decode(data)
    assert re.fullmatch(expected.pattern, str(refused.value)), (str(refused.value), expected.pattern)


def test_the_reference_reader_accepts_what_it_must() -> None:
    """And one that takes every rule at once: overload of both fields, a code continued across all three
    areas in their order, an empty value, PAD, END in sname, no END in the options field."""
    overloaded = HEADER[:44] + b"\x0c\x01s\xff".ljust(64, b"\0") + b"\x0c\x01f\x06\x00".ljust(128, b"\0")
    data = overloaded + MAGIC_COOKIE + b"\x35\x01\x01\x34\x01\x03\x00\x0c\x01o"
    expected = reference_decode(data)
    assert not isinstance(expected, Refusal)
    assert expected["options"] == ((53, b"\x01"), (12, b"ofs"), (6, b"")) and expected["file"] == b""
    assert check_decode(data) is not None


@FUZZ
@given(st.one_of(st.binary(max_size=1500), st.binary(min_size=234, max_size=242)))
def test_arbitrary_bytes(data: bytes) -> None:
    """Anything at all, and often right around the header's end (236) and the cookie's (240)."""
    check_decode(data)


@FUZZ
@given(st.binary(max_size=600), st.binary(max_size=192))
def test_arbitrary_options_behind_a_valid_header(options: bytes, sname_file: bytes) -> None:
    """Random bytes rarely pass the cookie check; this puts them where the option parser sees them."""
    fields = sname_file.ljust(192, b"\0")
    data = HEADER[:44] + fields + MAGIC_COOKIE + options
    check_decode(data)
    check_decode(HEADER[:44] + fields + MAGIC_COOKIE + b"\x34\x01\x03" + options)  # overloaded


@st.composite
def option_area(draw: st.DrawFn, size: int | None = None) -> bytes:
    """Well-formed options (PAD, repeats, END or none), then perhaps a fault: a last option whose length
    runs past the end, or a code with no length byte; or junk after END. With ``size`` (file, sname) the
    area is exactly that long, NUL-padded, with the fault in its last bytes where it must be seen, and
    often an option 52 inside (which means nothing there)."""
    codes = st.integers(1, 254) if size is None else st.one_of(st.just(52), st.integers(1, 254))
    out = bytearray()
    for code, value in draw(st.lists(st.tuples(codes, st.binary(max_size=24)), max_size=8)):
        out += b"\0" * draw(st.integers(0, 2)) + bytes((code, len(value))) + value
    tail = draw(st.sampled_from(["none", "end", "end+junk", "overrun", "lone code"]))
    fault = b""
    if tail == "end":
        out.append(255)
    elif tail == "end+junk":
        out += b"\xff" + draw(st.binary(max_size=16))
    elif tail == "overrun":
        partial = draw(st.binary(max_size=8))
        fault = bytes((draw(st.integers(1, 254)), draw(st.integers(len(partial) + 1, 255)))) + partial
    elif tail == "lone code":
        fault = bytes((draw(st.integers(1, 254)),))
    if size is None:
        return bytes(out + fault)
    return bytes(out[: size - len(fault)]).ljust(size - len(fault), b"\0") + fault


@FUZZ
@given(
    option_area(),
    option_area(128),
    option_area(64),
    st.sampled_from([b"", b"\x01", b"\x02", b"\x03", b"\x00", b"\x04", b"\x01\x02"]),
)
def test_structured_options_and_overload(options: bytes, file: bytes, sname: bytes, overload: bytes) -> None:
    """Options areas that mostly parse, so that every refusal kind past the header is reached: a fault
    in the options, in file or sname when they are overloaded, a bad option 52; and many accepted."""
    wire_52 = b"\x34" + bytes((len(overload),)) + overload if overload else b""
    check_decode(HEADER[:44] + sname + file + MAGIC_COOKIE + wire_52 + options)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0, 1, 52, 53, 255, draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=300))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


@FUZZ
@given(mutated_fixture())
def test_mutated_real_packets(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), option_area()))
def test_pxe_parsers_refuse_exactly_malformed_suboptions(data: bytes) -> None:
    """Options 43 and 175 hold sub-options laid out like DHCP options (PXE spec, iPXE): the same reading
    says which values must be refused and where; any other value gives the reference's sub-options."""
    assert isinstance(parse_user_class(data), tuple)  # never raises: anything is at worst a bare name
    found: dict[int, bytes] = {}
    at = read_options(data, 0, len(data), found)
    if at is None:
        assert parse_encapsulated(data) == found
        info = parse_ipxe(data)
        assert info.bus_id == found.get(177) and info.features <= set(found)
        assert info.version == (tuple(found[235]) if found.get(235) else None)
        tally("accepted")
        return
    if at + 1 >= len(data):
        pattern = rf"sub-option {data[at]} at offset {at} has no length byte"
    else:
        pattern = rf"sub-option {data[at]} length {data[at + 1]} runs past the end at offset {at}"
    for parse in (parse_encapsulated, parse_ipxe):
        with pytest.raises(DecodeError) as refused:
            parse(data)
        assert re.fullmatch(pattern, str(refused.value)), (str(refused.value), pattern)
    tally("refused")


# -- round trip on generated packets ---------------------------------------------------------------

addresses = st.integers(0, 2**32 - 1).map(IPv4Address)
c_strings = st.binary(max_size=64).map(lambda b: b.replace(b"\0", b""))  # sname/file hold NUL-free text
option_codes = st.integers(1, 254).filter(lambda code: code != 52)
option_values = st.one_of(st.binary(max_size=20), st.binary(min_size=250, max_size=700))


@st.composite
def packets(draw: st.DrawFn) -> DhcpPacket:
    options = draw(st.dictionaries(option_codes, option_values, max_size=12))
    return DhcpPacket(
        op=draw(st.sampled_from(Op)),
        htype=draw(st.integers(0, 255)),
        hlen=draw(st.integers(0, 16)),
        hops=draw(st.integers(0, 255)),
        xid=draw(st.integers(0, 2**32 - 1)),
        secs=draw(st.integers(0, 2**16 - 1)),
        flags=draw(st.integers(0, 2**16 - 1)),
        ciaddr=draw(addresses),
        yiaddr=draw(addresses),
        siaddr=draw(addresses),
        giaddr=draw(addresses),
        chaddr=draw(st.binary(min_size=16, max_size=16)),
        sname=draw(st.one_of(st.just(b""), c_strings)),
        file=draw(st.one_of(st.just(b""), c_strings.map(lambda b: b * 2))),
        options=tuple(options.items()),
    )


def cannot_fit(packet: DhcpPacket, max_size: int) -> str | None:
    """Why encode must refuse ``packet`` at ``max_size``, or None when it must fit.

    The DHCP payload may use max(max_size, 576) - 28 bytes (RFC 2131 section 2, RFC 2132 9.10), 240 of
    them for the header and cookie and one for END. Options are written message type first, each as
    pieces of at most 255 bytes (RFC 3396 section 5). What does not fit may continue in file and then
    sname, if they are empty, each ending with its own END, option 52 (3 bytes) taking room in the options
    field (RFC 2131 4.1); the pieces are read back in that order (RFC 3396 section 7), so they are placed
    in order and never go back to an earlier area: filling each area as far as it goes is then the best
    any layout can do."""
    room = max(max_size, 576) - 28 - 240 - 1
    options = sorted(packet.options, key=lambda option: option[0] != 53)
    pieces = [2 + len(value[at : at + 255]) for _, value in options for at in range(0, len(value) or 1, 255)]
    if sum(pieces) <= room:
        return None
    capacities = [room - 3] + [127] * (not packet.file) + [63] * (not packet.sname)
    if len(capacities) == 1:
        return "options do not fit max_size and file and sname are both in use"
    area, used = 0, 0
    for piece in pieces:
        while used + piece > capacities[area]:
            area, used = area + 1, 0
            if area == len(capacities):
                return "options do not fit max_size even with file and sname overloaded"
        used += piece
    return None


def check_encode(packet: DhcpPacket, max_size: int) -> None:
    """encode refuses exactly what cannot fit, saying why; what it encodes fits and decodes back."""
    refusal = cannot_fit(packet, max_size)
    try:
        wire = encode(packet, max_size=max_size)
    except ValueError as exc:
        assert refusal is not None, f"refused a packet that fits in {max_size}: {exc}"
        assert str(exc) == refusal
        tally(f"refused: {refusal}")
        return
    assert refusal is None, f"encoded a packet that cannot fit in {max_size}: {refusal}"
    assert len(wire) <= max(max_size - 28, 300)
    assert decode(wire) == type_first(packet)
    tally("overloaded" if wire[240:242] == b"\x34\x01" or wire[243:245] == b"\x34\x01" else "fits")


@FUZZ
@given(packets())
def test_round_trip_generated_packets(packet: DhcpPacket) -> None:
    wire = encode(packet, max_size=65535)
    assert len(wire) >= 300
    assert decode(wire) == type_first(packet)


@FUZZ
@given(packets(), st.sampled_from([576, 1024, 1500]))
def test_round_trip_within_max_size(packet: DhcpPacket, max_size: int) -> None:
    """With a real max_size, encode fits the packet (overloading if it must) exactly when it can."""
    check_encode(packet, max_size)


@FUZZ
@given(st.dictionaries(option_codes, st.binary(min_size=40, max_size=120), min_size=4, max_size=8))
def test_overload_round_trip(options: dict[int, bytes]) -> None:
    """Option sets around the 576-byte limit, so that overload into file and sname does the work."""
    check_encode(DhcpPacket(options=tuple(options.items())), 576)

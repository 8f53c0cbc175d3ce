"""Property tests: no input makes decode raise anything but DecodeError, and encode/decode are inverses.

A DHCP server reads datagrams from anyone on the segment. A codec bug that raises IndexError or
struct.error would be a remote crash (or at least a lost packet with a traceback), so this is the
contract the transport relies on. Budgets are small so the suite stays well under ten seconds.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netboot.protocol.dhcp import MAGIC_COOKIE, DhcpPacket, Op, decode, encode
from netboot.protocol.errors import DecodeError
from netboot.protocol.pxe import parse_encapsulated, parse_ipxe, parse_user_class

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
FIXTURES = [path.read_bytes() for path in sorted(FIXTURE_DIR.glob("*.bin"))]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = bytes([1, 1, 6, 0]) + bytes(232) + MAGIC_COOKIE


def type_first(packet: DhcpPacket) -> DhcpPacket:
    """``packet`` as encode lays it out: the message type (53) moves to the front."""
    options = sorted(packet.options, key=lambda option: option[0] != 53)  # stable: the rest keep order
    return packet.replace(options=tuple(options))


def decode_or_reject(data: bytes) -> DhcpPacket | None:
    """Decode, accepting DecodeError. A packet that decodes must also re-encode to itself."""
    try:
        packet = decode(data)
    except DecodeError:
        return None
    assert decode(encode(packet, max_size=65535)) == type_first(packet)
    return packet


@FUZZ
@given(st.binary(max_size=1500))
def test_arbitrary_bytes(data: bytes) -> None:
    decode_or_reject(data)


@FUZZ
@given(st.binary(max_size=600), st.binary(max_size=192))
def test_arbitrary_options_behind_a_valid_header(options: bytes, sname_file: bytes) -> None:
    """Random bytes rarely pass the cookie check; this puts them where the option parser sees them."""
    fields = sname_file.ljust(192, b"\0")
    data = HEADER[:44] + fields + MAGIC_COOKIE + options
    decode_or_reject(data)
    decode_or_reject(HEADER[:44] + fields + MAGIC_COOKIE + b"\x34\x01\x03" + options)  # overloaded


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
    decode_or_reject(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_pxe_parsers_raise_only_decode_error(data: bytes) -> None:
    assert isinstance(parse_user_class(data), tuple)  # never raises: anything is at worst a bare name
    try:
        parse_encapsulated(data)
        parse_ipxe(data)
    except DecodeError:
        pass


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


@FUZZ
@given(packets())
def test_round_trip_generated_packets(packet: DhcpPacket) -> None:
    wire = encode(packet, max_size=65535)
    assert len(wire) >= 300
    assert decode(wire) == type_first(packet)


@FUZZ
@given(packets(), st.sampled_from([576, 1024, 1500]))
def test_round_trip_within_max_size(packet: DhcpPacket, max_size: int) -> None:
    """With a real max_size, encode either fits the packet (overloading if it must) or says it cannot."""
    try:
        wire = encode(packet, max_size=max_size)
    except ValueError:
        return
    assert len(wire) <= max(max_size - 28, 300)
    assert decode(wire) == type_first(packet)


@FUZZ
@given(st.dictionaries(option_codes, st.binary(min_size=40, max_size=120), min_size=4, max_size=8))
def test_overload_round_trip(options: dict[int, bytes]) -> None:
    """Option sets around the 576-byte limit, so that overload into file and sname does the work."""
    packet = DhcpPacket(options=tuple(options.items()))
    try:
        wire = encode(packet)
    except ValueError:
        return
    assert len(wire) <= 548
    assert decode(wire) == type_first(packet)

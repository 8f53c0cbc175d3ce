"""The TFTP codec: golden bytes, real firmware requests, leniency where RFC 2347 asks for it, and fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp import (
    Ack,
    Data,
    Error,
    OptionAck,
    ReadRequest,
    WriteRequest,
    blksize_for_mtu,
    decode,
    encode,
    to_netascii,
)
from tests.tftp.conftest import FIXTURES

GOLDEN = [
    (ReadRequest("pxelinux.0", "octet"), b"\x00\x01pxelinux.0\x00octet\x00"),
    (WriteRequest("up.bin", "octet"), b"\x00\x02up.bin\x00octet\x00"),
    (Data(1, b"abc"), b"\x00\x03\x00\x01abc"),
    (Data(65535, b""), b"\x00\x03\xff\xff"),
    (Ack(0), b"\x00\x04\x00\x00"),
    (Ack(258), b"\x00\x04\x01\x02"),
    (Error(1, "file not found"), b"\x00\x05\x00\x01file not found\x00"),
    (Error(8, ""), b"\x00\x05\x00\x08\x00"),
    (OptionAck((("tsize", "1035264"), ("blksize", "1468"))),
     b"\x00\x06tsize\x001035264\x00blksize\x001468\x00"),
    (OptionAck(()), b"\x00\x06"),
]


@pytest.mark.parametrize(("packet", "wire"), GOLDEN, ids=[type(p).__name__ for p, _ in GOLDEN])
def test_golden_bytes(packet: object, wire: bytes) -> None:
    assert encode(packet) == wire  # type: ignore[arg-type]
    assert decode(wire) == packet


CAPTURED = {
    "ovmf-probe.rrq": ReadRequest(
        "ipxe.efi", "octet", (("tsize", "0"), ("blksize", "1468"), ("windowsize", "4"))
    ),
    "ovmf-real.rrq": ReadRequest("ipxe.efi", "octet", (("blksize", "1468"), ("windowsize", "4"))),
    "ipxe-lpxelinux.rrq": ReadRequest("lpxelinux.0", "octet", (("blksize", "1432"), ("tsize", "0"))),
    "pxelinux-ldlinux.rrq": ReadRequest("ldlinux.c32", "octet", (("tsize", "0"), ("blksize", "1408"))),
    "pxelinux-cfg-mac.rrq": ReadRequest(
        "pxelinux.cfg/01-52-54-00-e2-e0-01", "octet", (("tsize", "0"), ("blksize", "1408"))
    ),
    "pxelinux-cfg-default.rrq": ReadRequest(
        "pxelinux.cfg/default", "octet", (("tsize", "0"), ("blksize", "1408"))
    ),
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_firmware_requests_decode_and_round_trip(name: str) -> None:
    wire = (FIXTURES / name).read_bytes()
    assert decode(wire) == CAPTURED[name]
    assert encode(CAPTURED[name]) == wire


def test_mode_and_option_names_are_case_insensitive() -> None:
    packet = decode(b"\x00\x01f\x00OCTET\x00BlkSize\x001024\x00")
    assert packet == ReadRequest("f", "octet", (("blksize", "1024"),))


def test_request_option_accessor_takes_first_duplicate() -> None:
    packet = decode(b"\x00\x01f\x00octet\x00blksize\x00512\x00blksize\x001468\x00")
    assert isinstance(packet, ReadRequest)
    assert packet.option("BLKSIZE") == "512"
    assert packet.option("tsize") is None


@pytest.mark.parametrize(
    ("tail", "options"),
    [
        (b"blksize\x001468", ()),  # value not NUL-terminated
        (b"blksize\x00", ()),  # name without value
        (b"tsize\x000\x00blksize", (("tsize", "0"),)),  # unterminated name after a good pair
        (b"\x001468\x00", ()),  # empty option name
        (b"tsize\x000\x00\x00", (("tsize", "0"),)),  # stray NUL
    ],
)
def test_malformed_options_are_dropped_not_fatal(tail: bytes, options: tuple[tuple[str, str], ...]) -> None:
    packet = decode(b"\x00\x01f\x00octet\x00" + tail)
    assert isinstance(packet, ReadRequest)
    assert packet.options == options


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x00",
        b"\x00\x01pxelinux.0",  # name without NUL
        b"\x00\x01pxelinux.0\x00octet",  # mode without NUL
        b"\x00\x01",
        b"\x00\x03\x00",  # DATA without a whole block number
        b"\x00\x04",  # ACK without block number
        b"\x00\x05\x00",  # ERROR without code
        b"\x00\x07abc",  # unknown opcode
        b"\x00\x00",
        b"\xff\xff" + b"x" * 100,
    ],
)
def test_malformed_datagrams_raise_decode_error(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(wire)


def test_non_utf8_filename_round_trips_to_the_same_bytes() -> None:
    wire = b"\x00\x01caf\xe9\xff.bin\x00octet\x00"
    packet = decode(wire)
    assert isinstance(packet, ReadRequest)
    assert encode(packet) == wire


def test_ack_padding_is_tolerated() -> None:
    assert decode(b"\x00\x04\x00\x07\x00\x00") == Ack(7)


def test_error_message_without_nul() -> None:
    assert decode(b"\x00\x05\x00\x08abort") == Error(8, "abort")


def test_netascii_translation() -> None:
    assert to_netascii(b"a\nb\r\nc\r") == b"a\r\nb\r\0\r\nc\r\0"


@pytest.mark.parametrize(
    ("mtu", "ipv6", "expected"),
    [(1500, False, 1468), (1500, True, 1448), (9000, False, 8968), (65536, False, 65464), (20, False, 8)],
)
def test_blksize_for_mtu(mtu: int, ipv6: bool, expected: int) -> None:
    assert blksize_for_mtu(mtu, ipv6=ipv6) == expected


@given(st.binary(max_size=600))
def test_decode_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


_text = st.text(st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\0"), max_size=20)


@given(_text.filter(bool), st.lists(st.tuples(_text.filter(bool).map(str.lower), _text), max_size=5))
def test_request_round_trip(name: str, options: list[tuple[str, str]]) -> None:
    packet = ReadRequest(name, "octet", tuple(options))
    assert decode(encode(packet)) == packet

"""One-input checks of the wire codecs, shared by the coverage-guided fuzzer and the corpus replay.

``tools/fuzz.py`` runs each target under atheris (``make fuzz``); ``tests/protocol/test_corpus.py`` feeds
every file in ``tests/corpus/<target>/`` through the same function in ``make test``, so an input the
fuzzer ever found crashing stays a regression test. The contract each target checks is the one the
transports rely on: a datagram from anyone on the segment either decodes or raises
:class:`~netboot.protocol.errors.DecodeError` (the transport logs and drops those); anything else escaping is
a remote crash. Where a codec has an inverse, what decodes must also re-encode to the same packet.

This module imports no fuzzer, so the replay runs without atheris installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netboot.protocol import pxe
from netboot.protocol.dhcp import DhcpPacket, decode, encode
from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp import BytesSource, Limits, ReadRequest, ReadTransfer
from netboot.protocol.tftp import decode as tftp_decode
from netboot.protocol.tftp import encode as tftp_encode
from netboot.protocol.tftp_options import negotiate

CORPUS = Path(__file__).resolve().parent / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLIENT = ("10.0.0.50", 2000)


def type_first(packet: DhcpPacket) -> DhcpPacket:
    """``packet`` as encode lays it out: the message type (53) moves to the front, the rest keep order."""
    return packet.replace(options=tuple(sorted(packet.options, key=lambda option: option[0] != 53)))


def dhcp(data: bytes) -> None:
    """A DHCP datagram: decode, read every field the service reads, re-encode to the same packet."""
    try:
        packet = decode(data)
    except DecodeError:
        return
    # the accessors the service calls on every packet must not raise on what decode let through
    for accessor in (
        "mac",
        "broadcast",
        "message_type",
        "requested_ip",
        "server_id",
        "client_id",
        "vendor_class",
        "hostname",
        "param_request_list",
        "max_message_size",
        "lease_time",
    ):
        getattr(packet, accessor)
    again = decode(encode(packet, max_size=65535))
    assert again == type_first(packet), (packet, again)
    for code in PXE_CODES:
        value = packet.get(code)
        if value is not None:
            pxe_option(code, value)


#: the parser the DHCP service uses for each PXE/iPXE option code
PXE_PARSERS: dict[int, Callable[[bytes], object]] = {
    43: pxe.parse_encapsulated,
    175: pxe.parse_ipxe,
    77: pxe.parse_user_class,
    93: pxe.parse_client_arch,
    94: pxe.parse_client_ndi,
    97: pxe.parse_uuid,
}
PXE_CODES = tuple(PXE_PARSERS)


def pxe_option(code: int, value: bytes) -> None:
    """One PXE/iPXE option value through the parser the service uses for that option code."""
    try:
        if code == 43:
            found = pxe.parse_encapsulated(value)
            pxe.parse_boot_item(value)
            # repeated sub-options are joined, so a value may outgrow one sub-option: the encoder, which
            # only ever encodes what the server builds, refuses those rather than split them
            if all(len(joined) <= 255 for joined in found.values()):
                assert pxe.parse_encapsulated(pxe.encode_encapsulated(found)) == found
        elif code == 175:
            pxe.parse_ipxe(value).pci_id  # noqa: B018 - the property parses the bus id
        elif code == 77:
            names = pxe.parse_user_class(value)
            assert all(isinstance(name, str) for name in names) and bool(names) == bool(value), names
        elif code == 93:
            assert pxe.parse_client_arch(value)
        elif code == 94:
            pxe.parse_client_ndi(value)
        elif code == 97:
            pxe.parse_uuid(value)
    except DecodeError:
        return


def pxe_options(data: bytes) -> None:
    """The first byte picks the option (43, 175, 77, 93, 94 or 97), the rest is its value."""
    if data:
        pxe_option(PXE_CODES[data[0] % len(PXE_CODES)], data[1:])


def tftp(data: bytes) -> None:
    """A TFTP datagram: decode, re-encode; a read request is negotiated and then served to a client
    whose further datagrams are the rest of the input (split on ``|||``) and must never break the engine."""
    first, *rest = data.split(b"|||")
    try:
        packet = tftp_decode(first)
    except DecodeError:
        return
    assert tftp_decode(tftp_encode(packet)) == packet
    if not isinstance(packet, ReadRequest):
        return
    content = bytes(range(256)) * 20  # 5 120 bytes: several blocks at any blksize the client may ask
    limits = Limits()
    negotiated = negotiate(packet.options, len(content), limits)
    assert 8 <= negotiated.blksize <= 65464 and 1 <= negotiated.windowsize <= limits.max_windowsize
    transfer = ReadTransfer(packet, BytesSource(content), CLIENT, limits)
    now = 0.0
    transfer.start(now)
    for datagram in rest[:16]:
        now += 0.01
        # alternately from the client's TID and a stranger's: the stranger must not move the transfer
        transfer.receive(datagram, CLIENT, now)
        before = transfer.bytes_acked
        transfer.receive(datagram, ("10.0.0.51", 2000), now)
        assert transfer.bytes_acked == before
    transfer.on_timeout(now + 60)


TARGETS: dict[str, Callable[[bytes], None]] = {"dhcp": dhcp, "pxe": pxe_options, "tftp": tftp}


def seeds(target: str) -> list[bytes]:
    """The firmware captures each target starts from (the fuzzer mutates these, not empty input)."""
    if target == "dhcp":
        return [path.read_bytes() for path in sorted((FIXTURES / "dhcp").glob("*.bin"))]
    if target == "tftp":
        requests = [path.read_bytes() for path in sorted((FIXTURES / "tftp").glob("*.rrq"))]
        return [*requests, *(r + b"|||\x00\x04\x00\x00|||\x00\x04\x00\x01" for r in requests)]
    found = []
    for data in seeds("dhcp"):
        packet = decode(data)
        for code in PXE_CODES:
            value = packet.get(code)
            if value is not None:
                found.append(bytes([PXE_CODES.index(code)]) + value)
    return found

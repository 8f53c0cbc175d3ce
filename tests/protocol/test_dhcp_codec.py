"""DHCP codec: golden packets from real clients, golden bytes, RFC 3396 and overload, bad input.

Expected values in the golden tables were read with ``tcpdump -r CAPTURE -vvv -n -e`` from
``/work/shared/captures``; the fixtures are those packets' UDP payloads (``tools/extract_fixtures.py``).
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from netboot.mac import MacAddress
from netboot.protocol.dhcp import (
    DhcpPacket,
    MessageType,
    Op,
    Opt,
    decode,
    encode,
    pack_ips,
    pack_u32,
)
from netboot.protocol.errors import DecodeError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
ALL_FIXTURES = sorted(FIXTURES.glob("*.bin"))
MAC = MacAddress.parse("52:54:00:e2:e0:01")
SERVER = IPv4Address("10.88.0.1")
CLIENT_IP = IPv4Address("10.88.0.135")
ZERO = IPv4Address("0.0.0.0")

# iPXE 2019 (BIOS ROM, EFI ROM and ipxe.efi) all ask for the same 23 options.
IPXE_PRL = (1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203)
OVMF_PXE_PRL = (1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60,
                66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135)  # fmt: skip
OVMF_HTTP_PRL = (1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60,
                 235, 67, 97)  # fmt: skip
NIL_GUID = bytes(17)
CLIENT_ID = b"\x01" + MAC.packed


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# name -> attributes of the decoded packet, as tcpdump shows them. ``order`` is the option codes in wire
# order; ``opts`` are option values checked byte for byte.
GOLDEN: dict[str, dict[str, Any]] = {
    "bios-ipxe-0-discover.bin": {
        "size": 400, "xid": 0x9C56910F, "secs": 4, "broadcast": False,
        "message_type": MessageType.DISCOVER, "max_message_size": 1472,
        "vendor_class": "PXEClient:Arch:00000:UNDI:002001", "param_request_list": IPXE_PRL,
        "client_id": CLIENT_ID,
        "order": (53, 57, 93, 94, 60, 77, 55, 175, 61, 97),
        "opts": {93: b"\x00\x00", 94: b"\x01\x02\x01", 77: b"iPXE", 97: NIL_GUID},
        "opt_len": {175: 48},
    },
    "bios-ipxe-2-request.bin": {
        "size": 412, "xid": 0x9C56910F, "secs": 10, "broadcast": False,
        "message_type": MessageType.REQUEST, "server_id": SERVER, "requested_ip": CLIENT_IP,
        "order": (53, 57, 93, 94, 60, 77, 55, 175, 61, 97, 54, 50),
    },
    "bios-ipxe-1-offer.bin": {
        "size": 320, "op": Op.BOOTREPLY, "xid": 0x9C56910F, "secs": 4, "broadcast": False,
        "message_type": MessageType.OFFER, "yiaddr": CLIENT_IP, "siaddr": SERVER, "server_id": SERVER,
        "lease_time": 3600, "vendor_class": None,
        "order": (53, 54, 51, 67, 58, 59, 1, 28, 175),
        "opts": {67: b"http://10.88.0.1:8000/boot.ipxe\0", 58: pack_u32(1800), 59: pack_u32(3150),
                 1: b"\xff\xff\xff\x00", 28: pack_ips(IPv4Address("10.88.0.255")), 175: b"\xb0\x01\x01\xff"},
    },
    "uefi-pxe-0-discover.bin": {
        "size": 347, "xid": 0x977501FA, "secs": 0, "flags": 0x8000, "broadcast": True,
        "message_type": MessageType.DISCOVER, "max_message_size": 1472, "client_id": None,
        "vendor_class": "PXEClient:Arch:00007:UNDI:003000", "param_request_list": OVMF_PXE_PRL,
        "order": (53, 57, 55, 97, 94, 93, 60),
        "opts": {93: b"\x00\x07", 94: b"\x01\x03\x00", 97: NIL_GUID},
    },
    "uefi-pxe-2-request.bin": {
        "size": 359, "xid": 0x977501FA, "broadcast": True, "message_type": MessageType.REQUEST,
        "server_id": SERVER, "requested_ip": CLIENT_IP, "max_message_size": 65280,
        "order": (53, 54, 50, 57, 55, 97, 94, 93, 60),
    },
    "uefi-pxe-6-discover.bin": {  # ipxe.efi, chainloaded by OVMF
        "size": 391, "xid": 0x5C3B1353, "secs": 4, "broadcast": False,
        "message_type": MessageType.DISCOVER, "vendor_class": "PXEClient:Arch:00007:UNDI:003010",
        "param_request_list": IPXE_PRL,
        "order": (53, 57, 93, 94, 60, 77, 55, 175, 61, 97),
        "opts": {93: b"\x00\x07", 94: b"\x01\x03\x0a", 77: b"iPXE"},
        "opt_len": {175: 39},
    },
    "uefi-http-0-discover.bin": {
        "size": 340, "xid": 0xF5A03737, "broadcast": True, "message_type": MessageType.DISCOVER,
        "vendor_class": "HTTPClient:Arch:00016:UNDI:003000", "param_request_list": OVMF_HTTP_PRL,
        "order": (53, 57, 55, 97, 94, 93, 60),
        "opts": {93: b"\x00\x10"},
    },
    "uefi-http-1-offer.bin": {
        "size": 325, "op": Op.BOOTREPLY, "xid": 0xF5A03737, "broadcast": True,
        "message_type": MessageType.OFFER, "vendor_class": "HTTPClient", "yiaddr": CLIENT_IP,
        "opts": {67: b"http://10.88.0.1:8000/ipxe.efi\0"},
    },
    "uefi-ipxerom-0-discover.bin": {
        "size": 388, "xid": 0x8E857B10, "secs": 4, "message_type": MessageType.DISCOVER,
        "vendor_class": "PXEClient:Arch:00007:UNDI:003010", "client_id": CLIENT_ID,
        "opts": {93: b"\x00\x07", 77: b"iPXE"},
        "opt_len": {175: 36},
    },
    "bios-debian-4-discover.bin": {
        "size": 300, "xid": 0x5267F845, "secs": 0, "broadcast": False,
        "message_type": MessageType.DISCOVER, "max_message_size": 576, "vendor_class": "d-i",
        "param_request_list": (1, 3, 6, 12, 15, 28, 42), "client_id": CLIENT_ID,
        "order": (53, 57, 55, 60, 61),
    },
    "bios-debian-6-request.bin": {
        "size": 300, "xid": 0x5267F845, "message_type": MessageType.REQUEST, "vendor_class": "d-i",
        "requested_ip": CLIENT_IP, "server_id": SERVER,
        "order": (53, 50, 54, 57, 55, 60, 61),
    },
    "client-dhclient-0-discover.bin": {
        "size": 300, "xid": 0x0391A830, "message_type": MessageType.DISCOVER, "max_message_size": None,
        "vendor_class": "PXEClient:Arch:00007:UNDI:003000", "param_request_list": (1, 28, 66, 67),
        "client_id": None,
        "order": (53, 55, 60, 93),
    },
    "client-udhcpc-0-discover.bin": {
        "size": 306, "xid": 0xBB975271, "message_type": MessageType.DISCOVER, "max_message_size": 576,
        "vendor_class": "PXEClient:Arch:00000:UNDI:002001",
        "param_request_list": (1, 3, 6, 12, 15, 28, 42, 66, 67), "client_id": CLIENT_ID,
        "order": (53, 57, 55, 60, 61, 93),
    },
}  # fmt: skip


def test_every_fixture_has_golden_values() -> None:
    assert sorted(GOLDEN) == [path.name for path in ALL_FIXTURES]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_fixture(name: str) -> None:
    data = load(name)
    expected = dict(GOLDEN[name])
    assert len(data) == expected.pop("size")
    packet = decode(data)

    assert packet.op == expected.pop("op", Op.BOOTREQUEST)
    assert (packet.htype, packet.hlen, packet.hops) == (1, 6, 0)
    assert packet.mac == MAC
    assert packet.chaddr == MAC.packed + bytes(10)
    assert packet.sname == b"" and packet.file == b""
    assert packet.ciaddr == packet.giaddr == ZERO
    if packet.op == Op.BOOTREQUEST:
        assert packet.yiaddr == packet.siaddr == ZERO
    order = expected.pop("order", None)
    if order is not None:
        assert tuple(code for code, _ in packet.options) == order
    for code, value in expected.pop("opts", {}).items():
        assert packet.get(code) == value, f"option {code}"
    for code, length in expected.pop("opt_len", {}).items():
        assert len(packet.get(code) or b"") == length, f"option {code}"
    for attribute, value in expected.items():
        assert getattr(packet, attribute) == value, attribute


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_round_trip(path: Path) -> None:
    packet = decode(path.read_bytes())
    assert decode(encode(decode(encode(packet)))) == packet


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_reencode_is_byte_identical(path: Path) -> None:
    """Real clients and dnsmasq lay out packets exactly as encode does (type first, END, pad to 300)."""
    data = path.read_bytes()
    assert encode(decode(data), max_size=1500) == data


def test_ipxe_sends_bare_user_class() -> None:
    # tcpdump prints "instance#1: [ERROR: invalid option]": no RFC 3004 length prefix.
    assert decode(load("bios-ipxe-0-discover.bin")).get(Opt.USER_CLASS) == b"iPXE"


def test_debian_installer_pads_after_end() -> None:
    data = load("bios-debian-4-discover.bin")
    end = data.index(b"\xff", 240)
    assert data[end + 1 :] == bytes(29)
    assert Opt.CLIENT_ARCH not in decode(data)


# -- golden bytes ----------------------------------------------------------------------------------


def small_offer() -> DhcpPacket:
    return DhcpPacket(
        op=Op.BOOTREPLY,
        xid=0x12345678,
        yiaddr=IPv4Address("10.0.0.5"),
        siaddr=IPv4Address("10.0.0.1"),
        chaddr=MacAddress.parse("52:54:00:12:34:56").packed,
        file=b"undionly.kpxe",
        options=(
            (Opt.MESSAGE_TYPE, bytes([MessageType.OFFER])),
            (Opt.SERVER_ID, pack_ips(IPv4Address("10.0.0.1"))),
            (Opt.LEASE_TIME, pack_u32(3600)),
        ),
    )


def test_golden_offer_bytes() -> None:
    expected = bytes.fromhex(
        " ".join(
            [
                "02 01 06 00",  # op htype hlen hops
                "12345678",  # xid
                "0000 0000",  # secs flags
                "00000000 0a000005 0a000001 00000000",  # ciaddr yiaddr siaddr giaddr
                "525400123456" + "00" * 10,  # chaddr
                "00" * 64,  # sname
                "756e64696f6e6c792e6b707865" + "00" * (128 - 13),  # file "undionly.kpxe"
                "63825363",  # magic cookie
                "350102",  # 53 OFFER
                "3604 0a000001",  # 54 server id
                "3304 00000e10",  # 51 lease 3600
                "ff" + "00" * 44,  # END, padding to 300 bytes
            ]
        )
    )
    assert encode(small_offer()) == expected
    assert len(expected) == 300


def test_message_type_is_encoded_first() -> None:
    packet = DhcpPacket(options=((Opt.SERVER_ID, bytes(4)), (Opt.MESSAGE_TYPE, b"\x05")))
    assert encode(packet)[240:243] == b"\x35\x01\x05"
    assert decode(encode(packet)).options == ((53, b"\x05"), (54, bytes(4)))


def test_long_packet_is_not_padded() -> None:
    packet = small_offer().with_options({Opt.HOSTNAME: b"h" * 200})
    assert len(encode(packet, max_size=1500)) == 240 + 3 + 6 + 6 + 202 + 1


# -- RFC 3396 long options and overload ------------------------------------------------------------


def header(*, sname: bytes = b"", file: bytes = b"") -> bytes:
    """A BOOTREQUEST header with cookie, optionally with raw sname/file areas."""
    fixed = bytes([1, 1, 6, 0]) + bytes(24) + MAC.packed + bytes(10)
    return fixed + sname.ljust(64, b"\0") + file.ljust(128, b"\0") + b"\x63\x82\x53\x63"


def test_long_option_encodes_as_consecutive_pieces() -> None:
    value = bytes(range(256)) * 2 + bytes(88)  # 600 bytes
    packet = DhcpPacket(options=((Opt.MESSAGE_TYPE, b"\x02"), (Opt.VENDOR_SPECIFIC, value)))
    wire = encode(packet, max_size=1500)
    body = wire[243:]
    assert body[:2] == b"\x2b\xff" and body[257:259] == b"\x2b\xff" and body[514:516] == b"\x2b\x5a"
    assert body[2:257] + body[259:514] + body[516:606] == value
    assert body[606] == 0xFF
    assert decode(wire) == packet


def test_repeated_option_is_joined_in_wire_order() -> None:
    wire = header() + bytes.fromhex("3501 01  2b02 aabb  0c01 68  2b01 cc  ff")
    packet = decode(wire)
    assert packet.options == ((53, b"\x01"), (43, b"\xaa\xbb\xcc"), (12, b"h"))


def test_zero_length_option() -> None:
    wire = header() + bytes.fromhex("3501 01  5000  ff")  # 80 rapid commit has no value
    packet = decode(wire)
    assert packet.get(Opt.RAPID_COMMIT) == b""
    assert decode(encode(packet)) == packet


def test_overload_reads_file_then_sname() -> None:
    # RFC 3396 section 7: the options field, then file, then sname, whatever their offsets.
    sname_area = bytes.fromhex("2b02 3333  0f03 6c6162  ff")
    file_area = bytes.fromhex("2b02 2222  0c04 686f7374  ff")
    options = bytes.fromhex("3501 01  3401 03  2b02 1111  ff")
    packet = decode(header(sname=sname_area, file=file_area) + options)
    assert packet.get(Opt.VENDOR_SPECIFIC) == bytes.fromhex("111122223333")
    assert packet.options == ((53, b"\x01"), (43, bytes.fromhex("111122223333")), (12, b"host"), (15, b"lab"))
    assert packet.sname == b"" and packet.file == b""
    assert Opt.OVERLOAD not in packet


def test_overload_file_only_keeps_sname() -> None:
    file_area = bytes.fromhex("0c04 686f7374")  # no END: the field's end ends the options
    packet = decode(header(sname=b"bootserver", file=file_area) + bytes.fromhex("3501 01 3401 01 ff"))
    assert packet.hostname == "host"
    assert packet.sname == b"bootserver"
    assert packet.file == b""


def test_without_overload_file_is_a_string_even_if_it_looks_like_options() -> None:
    packet = decode(header(file=bytes.fromhex("0c04 686f7374")) + bytes.fromhex("3501 01 ff"))
    assert packet.file == bytes.fromhex("0c04686f7374")
    assert packet.hostname is None


@pytest.mark.parametrize("value", ["", "00", "04", "0101"])
def test_bad_overload_value(value: str) -> None:
    with pytest.raises(DecodeError, match="option 52"):
        decode(header() + bytes.fromhex(f"3501 01 34{len(value) // 2:02x}{value} ff"))


def test_option_running_past_file_field() -> None:
    file_area = bytes(120) + bytes.fromhex("0c10")  # a 16-byte hostname starting 8 bytes before the end
    with pytest.raises(DecodeError, match="option 12 length 16 runs past end of file field at offset 228"):
        decode(header(file=file_area) + bytes.fromhex("3501 01 3401 01 ff"))


def big_options() -> tuple[tuple[int, bytes], ...]:
    return (
        (Opt.MESSAGE_TYPE, b"\x02"),
        (Opt.VENDOR_SPECIFIC, b"v" * 250),
        (Opt.HOSTNAME, b"h" * 100),
        (Opt.DOMAIN_NAME, b"d" * 60),
    )


def test_encode_overloads_file_then_sname() -> None:
    packet = DhcpPacket(op=Op.BOOTREPLY, options=big_options())
    wire = encode(packet)  # 576: 307 bytes of options field, not enough for 419
    assert len(wire) <= 576 - 28
    assert wire[240:246] == bytes.fromhex("350102 340103")
    assert wire[108:110] == b"\x0c\x64"  # file starts with the hostname
    assert wire[44:46] == b"\x0f\x3c"  # sname with the domain name
    assert decode(wire) == packet


def test_encode_overload_uses_only_what_it_needs() -> None:
    options = big_options()[:3]
    wire = encode(DhcpPacket(options=options))
    assert wire[243:246] == bytes.fromhex("340101")  # file only
    assert wire[44:108] == bytes(64)
    assert decode(wire).options == options


def test_encode_overload_skips_a_used_file_field() -> None:
    packet = DhcpPacket(file=b"ipxe.efi", options=(*big_options()[:2], (Opt.HOSTNAME, b"h" * 60)))
    wire = encode(packet)
    assert wire[243:246] == bytes.fromhex("340102")  # sname only
    assert decode(wire) == packet


def test_encode_does_not_overload_when_max_size_allows() -> None:
    wire = encode(DhcpPacket(options=big_options()), max_size=1500)
    assert Opt.OVERLOAD not in wire[240:246]
    assert wire[44:236] == bytes(192)


def test_encode_raises_when_options_cannot_fit() -> None:
    with pytest.raises(ValueError, match="file and sname are both in use"):
        encode(DhcpPacket(sname=b"s", file=b"f", options=big_options()))
    with pytest.raises(ValueError, match="even with file and sname overloaded"):
        encode(DhcpPacket(options=((Opt.VENDOR_SPECIFIC, bytes(900)),)))


def test_max_size_below_rfc_minimum_is_raised_to_576() -> None:
    packet = DhcpPacket(options=((Opt.HOSTNAME, b"h" * 250),))
    assert encode(packet, max_size=300) == encode(packet, max_size=576)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated DHCP header: 0 bytes"),
        (b"\x01" * 100, "truncated DHCP header: 100 bytes"),
        (header()[:235], "truncated DHCP header: 235 bytes"),
        (header()[:236], "no magic cookie"),
        (header()[:239], "no magic cookie"),
        (header()[:236] + b"\x63\x82\x53\x64", "bad magic cookie 63825364"),
        (b"\x03" + header()[1:], "op 3 is neither"),
        (header()[:2] + b"\x11" + header()[3:], "hlen 17"),
        (header() + b"\x35", "option 53 at offset 240 has no length byte"),
        (header() + b"\x35\x01", "option 53 length 1 runs past end of packet at offset 240"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_packets(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_option_running_past_end_names_code_length_and_offset() -> None:
    data = load("uefi-pxe-0-discover.bin")[:-1]  # END off ...
    data = data[:-34] + b"\x3d\xff" + data[-32:]  # ... and the vendor class header replaced by 61/255
    with pytest.raises(DecodeError, match=r"option 61 length 255 runs past end of packet at offset 312"):
        decode(data)


def test_255_byte_client_identifier_is_valid() -> None:
    client_id = b"\xff" + bytes(range(254))
    packet = decode(header() + b"\x35\x01\x01\x3d\xff" + client_id + b"\xff")
    assert packet.client_id == client_id
    assert decode(encode(packet)) == packet


def test_missing_end_is_tolerated() -> None:
    packet = decode(header() + bytes.fromhex("3501 01 3c03 642d69"))
    assert packet.vendor_class == "d-i"


def test_junk_after_end_is_ignored() -> None:
    packet = decode(header() + bytes.fromhex("3501 01 ff 3dff"))
    assert packet.options == ((53, b"\x01"),)


def test_oversized_packet() -> None:
    data = load("bios-ipxe-0-discover.bin")
    padded = data[:-1] + bytes(70_000 - len(data)) + b"\xff"
    assert decode(padded) == decode(data)
    junk = data[:-1] + bytes(range(256)) * 273
    with pytest.raises(DecodeError):
        decode(junk)


def test_nonsense() -> None:
    for data in (b"GET / HTTP/1.1\r\n\r\n" * 20, bytes(range(256)) * 2, b"\xff" * 600):
        with pytest.raises(DecodeError):
            decode(data)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = load("client-udhcpc-0-discover.bin")
    assert decode(bytearray(data)) == decode(memoryview(data)) == decode(data)  # type: ignore[arg-type]


# -- accessors and construction --------------------------------------------------------------------


def test_malformed_typed_options_give_none() -> None:
    packet = DhcpPacket(
        options=(
            (Opt.MESSAGE_TYPE, b"\x09"),
            (Opt.REQUESTED_IP, b"\x0a\x00\x00"),
            (Opt.SERVER_ID, b""),
            (Opt.MAX_SIZE, b"\x05"),
            (Opt.LEASE_TIME, b"\x00\x00"),
        )
    )
    assert packet.message_type is None
    assert packet.requested_ip is None
    assert packet.server_id is None
    assert packet.max_message_size is None
    assert packet.lease_time is None
    assert packet.param_request_list == ()
    assert DhcpPacket(options=((Opt.MESSAGE_TYPE, b"\x01\x01"),)).message_type is None


def test_mac_needs_ethernet_hardware_type() -> None:
    assert DhcpPacket(htype=6, chaddr=MAC.packed).mac is None  # IEEE 802
    assert DhcpPacket(hlen=8, chaddr=MAC.packed).mac is None
    assert DhcpPacket(chaddr=MAC.packed).mac == MAC


def test_text_options_drop_trailing_nul() -> None:
    packet = decode(load("bios-ipxe-1-offer.bin"))
    assert packet.get(Opt.BOOTFILE) == b"http://10.88.0.1:8000/boot.ipxe\0"
    assert DhcpPacket(options=((Opt.HOSTNAME, b"node1\0"),)).hostname == "node1"


def test_packet_rejects_duplicate_and_framing_codes() -> None:
    with pytest.raises(ValueError, match="option 12 appears twice"):
        DhcpPacket(options=((12, b"a"), (12, b"b")))
    for code in (0, 52, 255, 256):
        with pytest.raises(ValueError, match="cannot be set"):
            DhcpPacket(options=((code, b"\x01"),))


def test_chaddr_is_padded_to_16_bytes() -> None:
    assert DhcpPacket(chaddr=MAC.packed).chaddr == MAC.packed + bytes(10)
    with pytest.raises(ValueError, match="chaddr"):
        DhcpPacket(chaddr=bytes(17))


def test_encode_rejects_oversized_fields() -> None:
    with pytest.raises(ValueError, match="sname is 65 bytes"):
        encode(DhcpPacket(sname=b"s" * 65))
    with pytest.raises(ValueError, match="file is 129 bytes"):
        encode(DhcpPacket(file=b"f" * 129))
    with pytest.raises(ValueError, match="cannot encode DHCP header"):
        encode(DhcpPacket(xid=1 << 32))


def test_with_options_sets_in_place_appends_and_removes() -> None:
    changes = {Opt.SERVER_ID: b"\x01\x02\x03\x04", 66: b"tftp", Opt.LEASE_TIME: None}
    packet = small_offer().with_options(changes)
    assert [code for code, _ in packet.options] == [53, 54, 66]
    assert packet.server_id == IPv4Address("1.2.3.4")
    assert packet.replace(xid=7).xid == 7
    assert packet.replace(xid=7).get(66) == b"tftp"


def test_decoded_packet_equals_constructed_packet() -> None:
    """decode() bypasses __init__ for speed: its packets must be indistinguishable from built ones."""
    for path in ALL_FIXTURES:
        decoded = decode(path.read_bytes())
        fields = {f.name: getattr(decoded, f.name) for f in dataclasses.fields(decoded) if f.init}
        built = DhcpPacket(**fields)
        assert decoded == built
        assert hash(decoded) == hash(built)
        assert repr(decoded) == repr(built)
        assert all(decoded.get(code) == built.get(code) for code in range(256))

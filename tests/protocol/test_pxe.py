"""PXE/iPXE option contents: parsers on real client options, encoders byte for byte."""

from __future__ import annotations

import uuid
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.protocol.dhcp import DhcpPacket, Opt, decode
from netboot.protocol.errors import DecodeError
from netboot.protocol.pxe import (
    BootMenuEntry,
    ClientNdi,
    IpxeOpt,
    encode_encapsulated,
    ipxe_no_pxedhcp,
    is_ipxe,
    parse_boot_item,
    parse_client_arch,
    parse_client_ndi,
    parse_encapsulated,
    parse_ipxe,
    parse_user_class,
    parse_uuid,
    pxe_vendor_options,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"


def fixture(name: str) -> DhcpPacket:
    return decode((FIXTURES / name).read_bytes())


def option(name: str, code: int) -> bytes:
    value = fixture(name).get(code)
    assert value is not None, f"{name} has no option {code}"
    return value


# -- option 93, 94, 97 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arch"),
    [
        ("bios-ipxe-0-discover.bin", 0),
        ("uefi-pxe-0-discover.bin", 7),
        ("uefi-pxe-6-discover.bin", 7),
        ("uefi-http-0-discover.bin", 16),
        ("client-dhclient-0-discover.bin", 7),
        ("client-udhcpc-0-discover.bin", 0),
    ],
)
def test_client_arch_from_real_clients(name: str, arch: int) -> None:
    assert parse_client_arch(option(name, Opt.CLIENT_ARCH)) == (arch,)


def test_client_arch_list_and_errors() -> None:
    assert parse_client_arch(b"\x00\x07\x00\x09") == (7, 9)
    for bad in (b"", b"\x00", b"\x00\x07\x00"):
        with pytest.raises(DecodeError, match="option 93"):
            parse_client_arch(bad)


@pytest.mark.parametrize(
    ("name", "ndi"),
    [
        ("bios-ipxe-0-discover.bin", ClientNdi(1, 2, 1)),  # UNDI 2.1: a legacy PXE ROM
        ("uefi-pxe-0-discover.bin", ClientNdi(1, 3, 0)),  # UNDI 3.0: OVMF
        ("uefi-ipxerom-0-discover.bin", ClientNdi(1, 3, 10)),  # UNDI 3.10: iPXE under UEFI
    ],
)
def test_client_ndi(name: str, ndi: ClientNdi) -> None:
    assert parse_client_ndi(option(name, Opt.CLIENT_NDI)) == ndi


def test_client_ndi_wrong_length() -> None:
    with pytest.raises(DecodeError, match="option 94"):
        parse_client_ndi(b"\x01\x02")


def test_uuid_is_mixed_endian_like_smbios() -> None:
    # What `qemu -uuid 12345678-9abc-def0-1122-334455667788` puts in SMBIOS and on the wire.
    wire = bytes.fromhex("00 78563412 bc9a f0de 1122 334455667788")
    assert parse_uuid(wire) == uuid.UUID("12345678-9abc-def0-1122-334455667788")


def test_nil_guid_from_qemu_is_none() -> None:
    for name in ("bios-ipxe-0-discover.bin", "uefi-pxe-0-discover.bin", "uefi-http-0-discover.bin"):
        assert parse_uuid(option(name, Opt.UUID_GUID)) is None
    assert parse_uuid(b"\x00" + b"\xff" * 16) is None


@pytest.mark.parametrize("bad", [b"", bytes(16), bytes(18), b"\x01" + bytes(16)])
def test_uuid_malformed(bad: bytes) -> None:
    with pytest.raises(DecodeError, match="option 97"):
        parse_uuid(bad)


# -- option 77 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "classes"),
    [
        (b"iPXE", ("iPXE",)),  # what iPXE really sends: no length prefix
        (b"MSFT 5.0", ("MSFT 5.0",)),
        (b"\x04iPXE", ("iPXE",)),  # RFC 3004
        (b"\x04iPXE\x03lab", ("iPXE", "lab")),
        (b"\x04iPXE\x00", ("\x04iPXE\x00",)),  # an empty RFC 3004 name is not allowed: bare
        (b"\x05iPXE", ("\x05iPXE",)),  # length runs past the end: bare
        (b"", ()),
    ],
)
def test_user_class(data: bytes, classes: tuple[str, ...]) -> None:
    assert parse_user_class(data) == classes


def test_user_class_from_real_ipxe() -> None:
    for name in ("bios-ipxe-0-discover.bin", "uefi-pxe-6-discover.bin", "uefi-ipxerom-0-discover.bin"):
        assert parse_user_class(option(name, Opt.USER_CLASS)) == ("iPXE",)


# -- encapsulated options --------------------------------------------------------------------------


def test_parse_ipxe_175_from_bios_rom() -> None:
    suboptions = parse_encapsulated(option("bios-ipxe-0-discover.bin", Opt.IPXE_ENCAP))
    assert suboptions[IpxeOpt.BUS_ID] == bytes.fromhex("01 8086 100e")
    assert suboptions[IpxeOpt.VERSION] == b"\x01\x00\x00"
    assert suboptions[IpxeOpt.HTTP] == b"\x01"
    assert suboptions[IpxeOpt.PXE_EXT] == b"\x02"
    assert list(suboptions) == [177, 235, 23, 34, 19, 17, 39, 25, 41, 16, 33, 21, 24, 18]


def test_parse_encapsulated_stops_at_end_and_skips_pad() -> None:
    # dnsmasq's option 175 in the bios-ipxe OFFER ends with END.
    assert parse_encapsulated(option("bios-ipxe-1-offer.bin", Opt.IPXE_ENCAP)) == {176: b"\x01"}
    assert parse_encapsulated(b"\x00\x06\x01\x08\x00\xff\x07\x04junk") == {6: b"\x08"}
    assert parse_encapsulated(b"\x01\x01a\x01\x01b") == {1: b"ab"}
    assert parse_encapsulated(b"") == {}


@pytest.mark.parametrize(("data", "message"), [(b"\x06", "no length byte"), (b"\x06\x02\x08", "runs past")])
def test_parse_encapsulated_errors(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_encapsulated(data)


@pytest.mark.parametrize(
    ("name", "version", "pci", "efi"),
    [
        ("bios-ipxe-0-discover.bin", (1, 0, 0), (0x8086, 0x100E), False),  # QEMU e1000 ROM
        ("uefi-ipxerom-0-discover.bin", (1, 0, 0), (0x1AF4, 0x1000), True),  # virtio-net EFI ROM
        ("uefi-pxe-6-discover.bin", (1, 0, 0), (0x1AF4, 0x1000), True),  # ipxe.efi over virtio-net
    ],
)
def test_parse_ipxe(name: str, version: tuple[int, ...], pci: tuple[int, int], efi: bool) -> None:
    info = parse_ipxe(option(name, Opt.IPXE_ENCAP))
    assert info.version == version
    assert info.pci_id == pci
    assert info.has(IpxeOpt.EFI) is efi
    assert info.has(IpxeOpt.HTTP)
    assert info.has(IpxeOpt.BZIMAGE) is not efi


def test_parse_ipxe_without_details() -> None:
    info = parse_ipxe(b"")
    assert (info.version, info.bus_id, info.pci_id, info.features) == (None, None, None, frozenset())
    assert parse_ipxe(b"\xb1\x03\x02\x00\x01").pci_id is None  # not PCI


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bios-ipxe-0-discover.bin", True),
        ("uefi-pxe-6-discover.bin", True),
        ("uefi-ipxerom-0-discover.bin", True),
        ("uefi-pxe-0-discover.bin", False),
        ("uefi-http-0-discover.bin", False),
        ("bios-debian-4-discover.bin", False),
        ("client-dhclient-0-discover.bin", False),
        ("client-udhcpc-0-discover.bin", False),
    ],
)
def test_is_ipxe(name: str, expected: bool) -> None:
    packet = fixture(name)
    user_class = packet.get(Opt.USER_CLASS)
    classes = parse_user_class(user_class) if user_class is not None else ()
    assert is_ipxe(classes, packet.get(Opt.IPXE_ENCAP)) is expected


def test_is_ipxe_needs_only_one_sign() -> None:
    assert is_ipxe(("iPXE",), None)
    assert is_ipxe((), b"")
    assert not is_ipxe(("ipxe",), None)


def test_encode_encapsulated() -> None:
    assert encode_encapsulated({1: b"ab", 2: b""}) == bytes.fromhex("0102 6162 0200 ff")
    assert encode_encapsulated({1: b"ab"}, end=False) == bytes.fromhex("0102 6162")
    assert parse_encapsulated(encode_encapsulated({9: bytes(255), 7: b"x"})) == {9: bytes(255), 7: b"x"}
    with pytest.raises(ValueError, match="at most 255"):
        encode_encapsulated({9: bytes(256)})
    for code in (0, 255):
        with pytest.raises(ValueError, match="reserved"):
            encode_encapsulated({code: b"x"})


# -- server-side encoders --------------------------------------------------------------------------


def test_ipxe_no_pxedhcp_matches_dnsmasq() -> None:
    assert ipxe_no_pxedhcp() == option("bios-ipxe-1-offer.bin", Opt.IPXE_ENCAP) == bytes.fromhex("b00101ff")


def test_pxe_vendor_options_default_boots_the_offered_file() -> None:
    assert pxe_vendor_options() == bytes.fromhex("060108ff")


def test_pxe_vendor_options_with_menu() -> None:
    menu = BootMenuEntry("netboot", IPv4Address("10.88.0.1"), prompt="PXE", timeout=3)
    assert pxe_vendor_options(discovery_control=7, menu=menu) == bytes.fromhex(
        "0601 07"  # discovery control: no broadcast, no multicast, listed servers only
        "0807 8000 01 0a580001"  # boot servers: type 0x8000, one address
        "090a 8000 07 6e6574626f6f74"  # boot menu: type 0x8000, "netboot"
        "0a04 03 505845"  # prompt: 3 s, "PXE"
        "ff"
    )


def test_boot_item_round_trip() -> None:
    option43 = pxe_vendor_options(boot_item=(0x8000, 0))
    assert option43 == bytes.fromhex("060108 4704 80000000 ff")
    assert parse_boot_item(option43) == (0x8000, 0)
    assert parse_boot_item(b"\x06\x01\x08\xff") is None
    with pytest.raises(DecodeError, match=r"43\.71"):
        parse_boot_item(b"\x47\x02\x80\x00")

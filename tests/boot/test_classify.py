"""classify(): who is asking, from the packets real firmware sends (tests/fixtures/dhcp) and crafted ones."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.arch import ARCH_CODES, Arch
from netboot.boot.classify import BootRequest, classify
from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
MAC = MacAddress.parse("52:54:00:e2:e0:01")  # every capture is from this NIC


def fixture(name: str) -> DhcpPacket:
    return decode((FIXTURES / name).read_bytes())


def classified(packet: DhcpPacket) -> BootRequest:
    request = classify(packet)
    assert request is not None
    return request


def crafted(*options: tuple[int, bytes], chaddr: bytes = bytes.fromhex("525400aa0001")) -> DhcpPacket:
    return DhcpPacket(chaddr=chaddr, options=((Opt.MESSAGE_TYPE, bytes([MessageType.DISCOVER])), *options))


# (fixture, arch, option-93 code, pxe, http, ipxe, kind)
REAL_CLIENTS = [
    ("bios-ipxe-0-discover.bin", Arch.BIOS, 0, True, False, True, "ipxe-bios"),
    ("bios-ipxe-2-request.bin", Arch.BIOS, 0, True, False, True, "ipxe-bios"),
    ("uefi-pxe-0-discover.bin", Arch.UEFI_X64, 7, True, False, False, "uefi-x64"),
    ("uefi-pxe-2-request.bin", Arch.UEFI_X64, 7, True, False, False, "uefi-x64"),
    (
        "uefi-pxe-6-discover.bin",
        Arch.UEFI_X64,
        7,
        True,
        False,
        True,
        "ipxe-uefi-x64",
    ),  # ipxe.efi, chainloaded
    ("uefi-ipxerom-0-discover.bin", Arch.UEFI_X64, 7, True, False, True, "ipxe-uefi-x64"),
    ("uefi-http-0-discover.bin", Arch.UEFI_X64, 16, False, True, False, "uefi-x64-http"),
    ("client-dhclient-0-discover.bin", Arch.UEFI_X64, 7, True, False, False, "uefi-x64"),  # sends a PXE class
    ("client-udhcpc-0-discover.bin", Arch.BIOS, 0, True, False, False, "bios"),  # likewise
    ("bios-debian-4-discover.bin", Arch.UNKNOWN, None, False, False, False, "os"),
    ("bios-debian-6-request.bin", Arch.UNKNOWN, None, False, False, False, "os"),
]


@pytest.mark.parametrize(
    ("name", "arch", "code", "pxe", "http", "ipxe", "kind"),
    REAL_CLIENTS,
    ids=[row[0] for row in REAL_CLIENTS],
)
def test_real_clients(
    name: str, arch: Arch, code: int | None, pxe: bool, http: bool, ipxe: bool, kind: str
) -> None:
    packet = fixture(name)
    request = classified(packet)
    assert request.mac == MAC
    assert (request.arch, request.arch_code) == (arch, code)
    assert (request.pxe, request.http, request.ipxe) == (pxe, http, ipxe)
    assert request.kind == kind
    assert request.boot_client == (pxe or http or ipxe)
    assert request.vendor_class == packet.vendor_class
    # OVMF and QEMU's iPXE send a nil GUID (no -uuid): it identifies nothing
    assert request.uuid is None


def test_ipxe_user_class_is_read() -> None:
    assert classified(fixture("bios-ipxe-0-discover.bin")).user_classes == ("iPXE",)
    assert classified(fixture("uefi-pxe-0-discover.bin")).user_classes == ()


def test_debian_installer_is_an_ordinary_client() -> None:
    request = classified(fixture("bios-debian-4-discover.bin"))
    assert request.vendor_class == "d-i"
    assert not request.boot_client


@pytest.mark.parametrize("name", ["client-dhclient-0-discover.bin", "client-udhcpc-0-discover.bin"])
def test_os_clients_without_pxe_class_are_not_boot_clients(name: str) -> None:
    plain = fixture(name).with_options({Opt.VENDOR_CLASS: None, Opt.CLIENT_ARCH: None})
    request = classified(plain)
    assert not request.boot_client
    assert request.kind == "os"


def test_option_93_alone_does_not_make_a_boot_client() -> None:
    """An OS client may send option 93 (dhclient does if told to); without PXE/HTTP class or iPXE: no boot."""
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x00\x07"), (Opt.VENDOR_CLASS, b"MSFT 5.0")))
    assert request.arch is Arch.UEFI_X64
    assert not request.boot_client


def test_ipxe_recognised_by_option_175_alone() -> None:
    opt175 = fixture("bios-ipxe-0-discover.bin").get(Opt.IPXE_ENCAP)
    assert opt175 is not None
    request = classified(crafted((Opt.IPXE_ENCAP, opt175)))
    assert request.ipxe and request.boot_client
    assert request.arch is Arch.BIOS  # iPXE without option 93 is the BIOS build


def test_ipxe_recognised_by_user_class_alone() -> None:
    request = classified(crafted((Opt.USER_CLASS, b"iPXE"), (Opt.CLIENT_ARCH, b"\x00\x07")))
    assert request.ipxe and request.arch is Arch.UEFI_X64 and not request.http


def test_rfc3004_user_class_list() -> None:
    request = classified(crafted((Opt.USER_CLASS, b"\x04iPXE\x03lab")))
    assert request.user_classes == ("iPXE", "lab")
    assert request.ipxe


def test_other_user_class_is_not_ipxe() -> None:
    request = classified(crafted((Opt.USER_CLASS, b"gPXE"), (Opt.VENDOR_CLASS, b"PXEClient")))
    assert not request.ipxe and request.pxe


@pytest.mark.parametrize(
    ("code", "arch", "http"),
    [(code, entry.arch, entry.http) for code, entry in sorted(ARCH_CODES.items())]
    + [(99, Arch.UNKNOWN, False)],
)
def test_every_option_93_code(code: int, arch: Arch, http: bool) -> None:
    vendor = f"{'HTTPClient' if http else 'PXEClient'}:Arch:{code:05d}:UNDI:003000".encode()
    request = classified(crafted((Opt.CLIENT_ARCH, code.to_bytes(2, "big")), (Opt.VENDOR_CLASS, vendor)))
    assert (request.arch, request.arch_code, request.http) == (arch, code, http)


def test_http_arch_code_without_http_vendor_class_is_still_http() -> None:
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x00\x13"), (Opt.VENDOR_CLASS, b"PXEClient")))
    assert (request.arch, request.http) == (Arch.UEFI_ARM64, True)


def test_ipxe_after_http_boot_is_not_an_http_boot_client() -> None:
    """iPXE running on an HTTP-boot arch code gets the script, not a loader: http only via vendor class."""
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x00\x10"), (Opt.USER_CLASS, b"iPXE")))
    assert request.ipxe and not request.http


def test_option_93_list_uses_the_first_type() -> None:
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x00\x07\x00\x00"), (Opt.VENDOR_CLASS, b"PXEClient")))
    assert (request.arch, request.arch_code) == (Arch.UEFI_X64, 7)


def test_pxe_client_without_option_93_is_bios() -> None:
    """PXE ROMs older than RFC 4578 send no option 93."""
    request = classified(crafted((Opt.VENDOR_CLASS, b"PXEClient")))
    assert (request.arch, request.arch_code, request.kind) == (Arch.BIOS, None, "bios")


@pytest.mark.parametrize(
    ("vendor", "arch", "code", "http"),
    [
        (b"PXEClient:Arch:00000:UNDI:002001", Arch.BIOS, 0, False),
        (b"PXEClient:Arch:00007:UNDI:003000", Arch.UEFI_X64, 7, False),
        (b"PXEClient:Arch:00011:UNDI:003000", Arch.UEFI_ARM64, 11, False),
        (b"HTTPClient:Arch:00016:UNDI:003000", Arch.UEFI_X64, 16, True),
    ],
)
def test_arch_from_vendor_class_when_option_93_is_missing(
    vendor: bytes, arch: Arch, code: int, http: bool
) -> None:
    request = classified(crafted((Opt.VENDOR_CLASS, vendor)))
    assert (request.arch, request.arch_code, request.http) == (arch, code, http)


@pytest.mark.parametrize("bad93", [b"", b"\x07", b"\x00\x07\x00"])
def test_malformed_option_93_falls_back_to_the_vendor_class(bad93: bytes) -> None:
    """A bad option 93 is not a bad packet: the vendor class names the arch as well."""
    request = classified(
        crafted((Opt.CLIENT_ARCH, bad93), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003000"))
    )
    assert (request.arch, request.arch_code) == (Arch.UEFI_X64, 7)


def test_malformed_option_93_and_bare_vendor_class_is_bios() -> None:
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x07"), (Opt.VENDOR_CLASS, b"PXEClient")))
    assert (request.arch, request.arch_code) == (Arch.BIOS, None)


def test_option_93_wins_over_the_vendor_class() -> None:
    request = classified(crafted((Opt.CLIENT_ARCH, b"\x00\x00"), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007")))
    assert request.arch is Arch.BIOS


@pytest.mark.parametrize(
    "vendor", [b"PXEClient:Arch:xxxxx:UNDI:003000", b"PXEClient:Arch:", b"PXEClient:UNDI:1"]
)
def test_garbled_vendor_arch_is_ignored(vendor: bytes) -> None:
    request = classified(crafted((Opt.VENDOR_CLASS, vendor)))
    assert request.pxe and request.arch is Arch.BIOS and request.arch_code is None


def test_http_client_without_any_arch_is_unknown() -> None:
    request = classified(crafted((Opt.VENDOR_CLASS, b"HTTPClient")))
    assert request.http and request.arch is Arch.UNKNOWN


def test_vendor_class_must_start_with_the_keyword() -> None:
    request = classified(
        crafted((Opt.VENDOR_CLASS, b"NotPXEClient:Arch:00007"), (Opt.CLIENT_ARCH, b"\x00\x07"))
    )
    assert not request.pxe and not request.boot_client


def test_uuid_from_option_97() -> None:
    machine = uuid.UUID("8a2b6f1c-1234-4d5e-9f00-0123456789ab")
    request = classified(
        crafted((Opt.VENDOR_CLASS, b"PXEClient"), (Opt.UUID_GUID, b"\x00" + machine.bytes_le))
    )
    assert request.uuid == machine


@pytest.mark.parametrize("bad97", [b"", b"\x00" * 16, b"\x01" + b"\x11" * 16, b"\x00" * 18])
def test_malformed_option_97_is_no_uuid(bad97: bytes) -> None:
    request = classified(crafted((Opt.VENDOR_CLASS, b"PXEClient"), (Opt.UUID_GUID, bad97)))
    assert request.uuid is None and request.pxe


@pytest.mark.parametrize("chaddr_fields", [{"htype": 6}, {"hlen": 16}, {"htype": 32, "hlen": 20}])
def test_no_ethernet_address_is_not_classified(chaddr_fields: dict[str, int]) -> None:
    packet = fixture("uefi-pxe-0-discover.bin").replace(**chaddr_fields)
    assert classify(packet) is None


@given(
    st.lists(
        st.tuples(st.sampled_from([60, 77, 93, 97, 175]), st.binary(max_size=40)), unique_by=lambda o: o[0]
    )
)
def test_classify_never_raises(options: list[tuple[int, bytes]]) -> None:
    request = classify(crafted(*options))
    assert request is not None
    assert request.kind
    if request.ipxe:
        assert request.kind.startswith("ipxe-")

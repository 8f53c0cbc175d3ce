"""decide(): the decision table, firmware x installed loaders -> what the client is told to load.

Rows use the real firmware packets from tests/fixtures/dhcp (see shared/captures/README.md) plus crafted
packets for clients we have no capture of. ``None`` means "not a boot client: not ours to answer";
``NoBoot`` means "a boot client we cannot serve" (recorded, never a file that does not exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.arch import ARCH_CODES, Arch
from netboot.boot import urls
from netboot.boot.classify import classify
from netboot.boot.decide import (
    HTTP_BOOT_SHIM,
    SHIM_CHAIN,
    BootContext,
    BootDecision,
    LocalBoot,
    NoBoot,
    decide,
)
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
SERVER = IPv4Address("10.88.0.1")
PORT = 8080
SCRIPT = f"http://{SERVER}:{PORT}/boot.ipxe?mac=${{net0/mac}}"

# loader sets: what find_loaders() found on disk
DEFAULT: Mapping[Arch, str] = {Arch.BIOS: "undionly.kpxe", Arch.UEFI_X64: "ipxe.efi"}
WITH_ARM64: Mapping[Arch, str] = {**DEFAULT, Arch.UEFI_ARM64: "ipxe-arm64.efi"}
SNPONLY: Mapping[Arch, str] = {Arch.BIOS: "undionly.kpxe", Arch.UEFI_X64: "snponly.efi"}
BIOS_ONLY: Mapping[Arch, str] = {Arch.BIOS: "undionly.kpxe"}
NONE: Mapping[Arch, str] = {}
LOADER_SETS = {
    "default": DEFAULT,
    "arm64": WITH_ARM64,
    "snponly": SNPONLY,
    "bios-only": BIOS_ONLY,
    "none": NONE,
}


def fixture(name: str, strip: tuple[int, ...] = ()) -> DhcpPacket:
    packet = decode((FIXTURES / name).read_bytes())
    return packet.with_options(dict.fromkeys(strip)) if strip else packet


def crafted(*options: tuple[int, bytes]) -> DhcpPacket:
    return DhcpPacket(
        chaddr=bytes.fromhex("525400aa0001"),
        options=((Opt.MESSAGE_TYPE, bytes([MessageType.DISCOVER])), *options),
    )


def pxe(code: int | None, vendor: str | None = None, *extra: tuple[int, bytes]) -> DhcpPacket:
    options: list[tuple[int, bytes]] = []
    if code is not None:
        options.append((Opt.CLIENT_ARCH, code.to_bytes(2, "big")))
    if vendor is None:
        vendor = f"PXEClient:Arch:{code:05d}:UNDI:003000" if code is not None else "PXEClient"
    options.append((Opt.VENDOR_CLASS, vendor.encode()))
    return crafted(*options, *extra)


def tftp(name: str) -> BootDecision:
    return BootDecision(name, SERVER, "PXEClient", "tftp")


def http_loader(name: str) -> BootDecision:
    return BootDecision(f"http://{SERVER}:{PORT}/loaders/{name}", SERVER, "HTTPClient", "http")


IPXE = BootDecision(SCRIPT, SERVER, "PXEClient", "http")
IPXE_HTTP = BootDecision(SCRIPT, SERVER, "HTTPClient", "http")
NO_LOADER = NoBoot


CLIENTS: dict[str, DhcpPacket] = {
    # real firmware
    "bios-ipxe-rom": fixture("bios-ipxe-0-discover.bin"),  # SeaBIOS + iPXE ROM: 93=0, iPXE, 175
    "bios-ipxe-rom-request": fixture("bios-ipxe-2-request.bin"),
    "ovmf-pxe": fixture("uefi-pxe-0-discover.bin"),  # 93=7, PXEClient, broadcast
    "ovmf-pxe-request": fixture("uefi-pxe-2-request.bin"),
    "ipxe-efi-chainloaded": fixture("uefi-pxe-6-discover.bin"),  # ipxe.efi after OVMF PXE
    "ovmf-http": fixture("uefi-http-0-discover.bin"),  # 93=16, HTTPClient
    "uefi-ipxerom": fixture("uefi-ipxerom-0-discover.bin"),  # OVMF + NIC's iPXE EFI ROM
    "debian-installer": fixture("bios-debian-4-discover.bin"),  # vendor class d-i, no 93
    "debian-installer-request": fixture("bios-debian-6-request.bin"),
    "dhclient-as-pxe": fixture("client-dhclient-0-discover.bin"),  # told to send 93=7 + PXEClient
    "udhcpc-as-pxe": fixture("client-udhcpc-0-discover.bin"),  # told to send 93=0 + PXEClient
    "dhclient": fixture("client-dhclient-0-discover.bin", strip=(Opt.VENDOR_CLASS, Opt.CLIENT_ARCH)),
    "udhcpc": fixture("client-udhcpc-0-discover.bin", strip=(Opt.VENDOR_CLASS, Opt.CLIENT_ARCH)),
    # crafted
    "arm64-pxe": pxe(11),
    "arm64-http": pxe(19, "HTTPClient:Arch:00019:UNDI:003000"),
    "x64-ebc-9": pxe(9),
    "ia32-pxe": pxe(6),
    "pxe-no-93": pxe(None),
    "pxe-no-93-vendor-arch-7": pxe(None, "PXEClient:Arch:00007:UNDI:003000"),
    "pxe-malformed-93": crafted((Opt.CLIENT_ARCH, b"\x07"), (Opt.VENDOR_CLASS, b"PXEClient")),
    "pxe-malformed-93-vendor-arch-7": crafted(
        (Opt.CLIENT_ARCH, b"\x00\x07\x00"), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003000")
    ),
    "pxe-unknown-arch-99": pxe(99),
    "ipxe-malformed-93": crafted((Opt.CLIENT_ARCH, b"\x01"), (Opt.USER_CLASS, b"iPXE")),
    "ipxe-unknown-arch-99": crafted((Opt.CLIENT_ARCH, b"\x00\x63"), (Opt.USER_CLASS, b"iPXE")),
    "ipxe-arm64": crafted(
        (Opt.CLIENT_ARCH, b"\x00\x0b"),
        (Opt.USER_CLASS, b"iPXE"),
        (Opt.VENDOR_CLASS, b"PXEClient:Arch:00011:UNDI:003010"),
    ),
    "ipxe-http-boot": crafted(
        (Opt.CLIENT_ARCH, b"\x00\x10"),
        (Opt.USER_CLASS, b"iPXE"),
        (Opt.VENDOR_CLASS, b"HTTPClient:Arch:00016:UNDI:003000"),
    ),
    "os-with-93-only": crafted((Opt.CLIENT_ARCH, b"\x00\x07"), (Opt.VENDOR_CLASS, b"MSFT 5.0")),
    "no-options": crafted(),
}

# (client, loader set, expected); "*" = every loader set
TABLE: list[tuple[str, str, BootDecision | type[NoBoot] | None]] = [
    # iPXE always gets the per-MAC script over HTTP, whatever loaders exist: no chainload loop
    ("bios-ipxe-rom", "*", IPXE),
    ("bios-ipxe-rom-request", "*", IPXE),
    ("ipxe-efi-chainloaded", "*", IPXE),
    ("uefi-ipxerom", "*", IPXE),
    ("ipxe-malformed-93", "*", IPXE),
    ("ipxe-unknown-arch-99", "*", IPXE),
    ("ipxe-arm64", "*", IPXE),
    ("ipxe-http-boot", "*", IPXE_HTTP),
    # UEFI x64 PXE (OVMF): TFTP ipxe.efi, or snponly.efi when configured
    ("ovmf-pxe", "default", tftp("ipxe.efi")),
    ("ovmf-pxe", "arm64", tftp("ipxe.efi")),
    ("ovmf-pxe", "snponly", tftp("snponly.efi")),
    ("ovmf-pxe", "bios-only", NO_LOADER),
    ("ovmf-pxe", "none", NO_LOADER),
    ("ovmf-pxe-request", "default", tftp("ipxe.efi")),
    ("x64-ebc-9", "default", tftp("ipxe.efi")),
    ("x64-ebc-9", "snponly", tftp("snponly.efi")),
    ("x64-ebc-9", "bios-only", NO_LOADER),
    # UEFI HTTP Boot: a URL, HTTPClient echoed
    ("ovmf-http", "default", http_loader("ipxe.efi")),
    ("ovmf-http", "snponly", http_loader("snponly.efi")),
    ("ovmf-http", "bios-only", NO_LOADER),
    ("ovmf-http", "none", NO_LOADER),
    # ARM64 only when an ARM64 loader is configured and found
    ("arm64-pxe", "arm64", tftp("ipxe-arm64.efi")),
    ("arm64-pxe", "default", NO_LOADER),
    ("arm64-pxe", "none", NO_LOADER),
    ("arm64-http", "arm64", http_loader("ipxe-arm64.efi")),
    ("arm64-http", "default", NO_LOADER),
    ("ia32-pxe", "default", NO_LOADER),
    # BIOS
    ("udhcpc-as-pxe", "default", tftp("undionly.kpxe")),
    ("udhcpc-as-pxe", "bios-only", tftp("undionly.kpxe")),
    ("udhcpc-as-pxe", "none", NO_LOADER),
    ("dhclient-as-pxe", "default", tftp("ipxe.efi")),
    ("pxe-no-93", "default", tftp("undionly.kpxe")),  # pre-RFC 4578 ROMs are BIOS
    ("pxe-no-93", "none", NO_LOADER),
    ("pxe-no-93-vendor-arch-7", "default", tftp("ipxe.efi")),
    ("pxe-malformed-93", "default", tftp("undionly.kpxe")),  # treated as absent
    ("pxe-malformed-93-vendor-arch-7", "default", tftp("ipxe.efi")),
    ("pxe-unknown-arch-99", "default", NO_LOADER),
    ("pxe-unknown-arch-99", "arm64", NO_LOADER),
    # ordinary clients: not ours, whatever loaders exist
    ("debian-installer", "*", None),
    ("debian-installer-request", "*", None),
    ("dhclient", "*", None),
    ("udhcpc", "*", None),
    ("os-with-93-only", "*", None),
    ("no-options", "*", None),
]


def _rows() -> list[tuple[str, str, BootDecision | type[NoBoot] | None]]:
    rows = []
    for client, loaders, expected in TABLE:
        for name in LOADER_SETS if loaders == "*" else [loaders]:
            rows.append((client, name, expected))
    return rows


def context(loaders: Mapping[Arch, str], port: int = PORT) -> BootContext:
    return BootContext(server_ip=SERVER, http_port=port, loaders=loaders)


@pytest.mark.parametrize(
    ("client", "loaders", "expected"), _rows(), ids=[f"{c}|{ld}" for c, ld, _ in _rows()]
)
def test_decision_table(client: str, loaders: str, expected: BootDecision | type[NoBoot] | None) -> None:
    request = classify(CLIENTS[client])
    assert request is not None
    decision = decide(request, context(LOADER_SETS[loaders]))
    if expected is NoBoot:
        assert isinstance(decision, NoBoot)
        assert request.arch.value in decision.reason
    else:
        assert decision == expected


def test_every_client_is_in_the_table() -> None:
    assert {client for client, _, _ in TABLE} == set(CLIENTS)


def test_no_boot_reason_names_the_architecture() -> None:
    request = classify(CLIENTS["arm64-pxe"])
    assert request is not None
    assert decide(request, context(DEFAULT)) == NoBoot("no boot loader configured or found for uefi-arm64")


def test_ipxe_script_url() -> None:
    assert urls.ipxe_script_url("") == "/boot.ipxe?mac=${net0/mac}"
    request = classify(CLIENTS["bios-ipxe-rom"])
    assert request is not None
    decision = decide(request, context(DEFAULT))
    assert isinstance(decision, BootDecision)
    assert decision.boot_file == "http://10.88.0.1:8080/boot.ipxe?mac=${net0/mac}"
    assert decision.next_server == SERVER


def test_port_80_is_left_out_of_urls() -> None:
    assert context(DEFAULT, 80).http_base == "http://10.88.0.1"
    ipxe, http_boot = classify(CLIENTS["bios-ipxe-rom"]), classify(CLIENTS["ovmf-http"])
    assert ipxe is not None and http_boot is not None
    assert decide(ipxe, context(DEFAULT, 80)) == BootDecision(
        "http://10.88.0.1/boot.ipxe?mac=${net0/mac}", SERVER, "PXEClient", "http"
    )
    assert decide(http_boot, context(DEFAULT, 80)) == BootDecision(
        "http://10.88.0.1/loaders/ipxe.efi", SERVER, "HTTPClient", "http"
    )


def test_other_ports_are_in_urls() -> None:
    assert context(DEFAULT, 8000).http_base == "http://10.88.0.1:8000"


def test_ipv6_hosts_are_bracketed() -> None:
    assert urls.http_base("fd00::1", 8080) == "http://[fd00::1]:8080"


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_local_boot_wins_for_every_boot_client_and_only_for_them(client: str) -> None:
    """The registration axis: "boot your disk" answers a boot client with no file, whatever its firmware."""
    request = classify(CLIENTS[client])
    assert request is not None
    local = LocalBoot("state installed: local boot")
    got = decide(request, context(DEFAULT), local)
    assert got == (local if request.boot_client else None)


def test_tftp_boot_file_is_a_bare_name() -> None:
    """The loader table holds file names; the client is never sent a path or URL over TFTP."""
    for client, loaders, expected in _rows():
        if isinstance(expected, BootDecision) and expected.via == "tftp":
            assert "/" not in expected.boot_file and ":" not in expected.boot_file, (client, loaders)


# -- properties over every client shape ------------------------------------------------------------

ARCH_CODE = st.one_of(st.none(), st.sampled_from(sorted(ARCH_CODES)), st.integers(0, 0xFFFF))
LOADERS = st.dictionaries(st.sampled_from(list(Arch)), st.sampled_from(["a.efi", "b.kpxe", "c.efi"]))


@st.composite
def boot_packets(draw: st.DrawFn) -> DhcpPacket:
    options: list[tuple[int, bytes]] = []
    code = draw(ARCH_CODE)
    if code is not None:
        options.append((Opt.CLIENT_ARCH, code.to_bytes(2, "big")))
    vendor = draw(
        st.sampled_from(
            [
                None,
                "PXEClient",
                "HTTPClient",
                "d-i",
                "PXEClient:Arch:00007:UNDI:003000",
                "HTTPClient:Arch:00016:UNDI:003000",
            ]
        )
    )
    if vendor is not None:
        options.append((Opt.VENDOR_CLASS, vendor.encode()))
    if draw(st.booleans()):
        options.append((Opt.USER_CLASS, b"iPXE"))
    return crafted(*options)


@given(boot_packets(), LOADERS, st.integers(1, 65535))
def test_ipxe_always_gets_the_script(packet: DhcpPacket, loaders: dict[Arch, str], port: int) -> None:
    request = classify(packet)
    assert request is not None
    decision = decide(request, context(loaders, port))
    if request.ipxe:
        assert isinstance(decision, BootDecision)
        assert decision.boot_file.endswith("/boot.ipxe?mac=${net0/mac}")
        assert decision.via == "http"
        assert not any(decision.boot_file.endswith(name) for name in loaders.values())


@given(boot_packets(), LOADERS)
def test_answers_only_boot_clients_and_only_with_existing_loaders(
    packet: DhcpPacket, loaders: dict[Arch, str]
) -> None:
    request = classify(packet)
    assert request is not None
    decision = decide(request, context(loaders))
    if not request.boot_client:
        assert decision is None
    elif request.ipxe:
        assert isinstance(decision, BootDecision)  # the script: see test_ipxe_always_gets_the_script
    elif request.arch in loaders:
        assert isinstance(decision, BootDecision)
        assert decision.boot_file.rsplit("/", 1)[-1] == loaders[request.arch]
        assert decision.vendor_class == ("HTTPClient" if request.http else "PXEClient")
        assert decision.via == ("http" if request.http else "tftp")
        assert decision.next_server == SERVER
    else:
        assert isinstance(decision, NoBoot)


# -- the shim-grub chain (Secure Boot) -------------------------------------------------------------

SHIM = tftp(urls.SHIM_BOOT_FILE)
#: UEFI x64 PXE clients (93 = 7 or 9, or the vendor class saying arch 7): they get shim on the chain
UEFI_X64_PXE = ["ovmf-pxe", "ovmf-pxe-request", "x64-ebc-9", "dhclient-as-pxe", "pxe-no-93-vendor-arch-7",
                "pxe-malformed-93-vendor-arch-7"]


def shim_context(loaders: Mapping[Arch, str], *, shim: bool = True, http: bool = True) -> BootContext:
    return BootContext(server_ip=SERVER, http_port=PORT, loaders=loaders, shim=shim, shim_http=shim and http)


@pytest.mark.parametrize("loaders", sorted(LOADER_SETS))
@pytest.mark.parametrize("client", UEFI_X64_PXE)
def test_shim_chain_gives_uefi_x64_pxe_shim_over_tftp(client: str, loaders: str) -> None:
    """Whatever iPXE loaders exist (none at all, too): shim is the boot file, a bare TFTP name, PXEClient."""
    request = classify(CLIENTS[client])
    assert request is not None and request.arch is Arch.UEFI_X64 and not request.http and not request.ipxe
    got = decide(request, shim_context(LOADER_SETS[loaders]), chain=SHIM_CHAIN)
    assert got == BootDecision("shimx64.efi", SERVER, "PXEClient", "tftp") == SHIM
    # the same client on the iPXE chain (the default) still gets iPXE: the chain is what changed it
    assert decide(request, shim_context(LOADER_SETS[loaders])) != SHIM


def test_shim_chain_uefi_http_boot_gets_its_disk_image_url() -> None:
    """HTTP Boot gets the chain as a disk image named after the MAC (netboot.shimdisk), over HTTP, with
    option 60 HTTPClient, whatever iPXE loaders exist."""
    request = classify(CLIENTS["ovmf-http"])
    assert request is not None and request.http
    url = f"http://{SERVER}:{PORT}/shim-grub/{request.mac.colon.replace(':', '-')}.img"
    for loaders in LOADER_SETS.values():
        got = decide(request, shim_context(loaders), chain=SHIM_CHAIN)
        assert got == BootDecision(url, SERVER, "HTTPClient", "http")


@pytest.mark.parametrize(("shim", "why"), [(True, HTTP_BOOT_SHIM), (False, "shim-signed")])
def test_shim_chain_uefi_http_boot_without_its_tools_gets_no_boot_file_with_the_reason(
    shim: bool, why: str
) -> None:
    """Without mtools the image cannot be built: no boot file, and the reason names the package (and that
    PXE works); without shim and GRUB the reason is theirs, as for PXE."""
    request = classify(CLIENTS["ovmf-http"])
    assert request is not None
    got = decide(request, shim_context(DEFAULT, shim=shim, http=False), chain=SHIM_CHAIN)
    assert isinstance(got, NoBoot) and why in got.reason
    assert "apt-get install mtools" in HTTP_BOOT_SHIM and "PXE" in HTTP_BOOT_SHIM


@pytest.mark.parametrize("client", UEFI_X64_PXE)
def test_shim_chain_without_the_files_gets_no_boot_file_naming_the_packages(client: str) -> None:
    request = classify(CLIENTS[client])
    assert request is not None
    got = decide(request, shim_context(DEFAULT, shim=False), chain=SHIM_CHAIN)
    assert isinstance(got, NoBoot)  # never iPXE instead: Secure Boot firmware refuses it
    assert "shimx64.efi" in got.reason and "grubx64.efi" in got.reason
    assert "apt-get install shim-signed grub-efi-amd64-signed" in got.reason


@pytest.mark.parametrize("shim", [True, False])
@pytest.mark.parametrize("loaders", sorted(LOADER_SETS))
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_shim_chain_leaves_every_other_client_as_the_ipxe_chain_does(client: str, loaders: str,
                                                                     shim: bool) -> None:
    """BIOS (no Secure Boot there), ARM64 (no shim for it here), a client already in iPXE (it asks for the
    script), ordinary OS clients: the shim-grub chain answers them exactly as the iPXE chain does."""
    request = classify(CLIENTS[client])
    assert request is not None
    if request.arch is Arch.UEFI_X64 and not request.ipxe and request.boot_client:
        return  # the rows above
    ctx = shim_context(LOADER_SETS[loaders], shim=shim)
    assert decide(request, ctx, chain=SHIM_CHAIN) == decide(request, ctx, chain="ipxe")


def test_shim_chain_rows_for_bios_ipxe_and_arm64() -> None:
    """The rows of the previous test spelled out, so a change to both chains at once still shows."""
    ctx = shim_context(WITH_ARM64)
    expected = {
        "udhcpc-as-pxe": tftp("undionly.kpxe"),
        "pxe-no-93": tftp("undionly.kpxe"),
        "bios-ipxe-rom": IPXE,
        "ipxe-efi-chainloaded": IPXE,  # ipxe.efi after OVMF PXE: the script, not shim again
        "ipxe-http-boot": IPXE_HTTP,
        "arm64-pxe": tftp("ipxe-arm64.efi"),
        "arm64-http": http_loader("ipxe-arm64.efi"),
        "debian-installer": None,
    }
    for client, answer in expected.items():
        request = classify(CLIENTS[client])
        assert request is not None
        assert decide(request, ctx, chain=SHIM_CHAIN) == answer, client


@pytest.mark.parametrize("shim", [True, False])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_local_boot_wins_on_the_shim_chain_too(client: str, shim: bool) -> None:
    request = classify(CLIENTS[client])
    assert request is not None
    local = LocalBoot("state installed: local boot, local_boot skip")
    got = decide(request, shim_context(DEFAULT, shim=shim), local, SHIM_CHAIN)
    assert got == (local if request.boot_client else None)


@given(boot_packets(), LOADERS, st.booleans())
def test_shim_chain_changes_only_uefi_x64_firmware_clients(packet: DhcpPacket, loaders: dict[Arch, str],
                                                           shim: bool) -> None:
    request = classify(packet)
    assert request is not None
    ctx = shim_context(loaders, shim=shim)
    got = decide(request, ctx, chain=SHIM_CHAIN)
    if request.boot_client and request.arch is Arch.UEFI_X64 and not request.ipxe:
        if not shim:
            assert isinstance(got, NoBoot) and "shim-signed" in got.reason
        elif request.http:
            assert isinstance(got, BootDecision) and got.via == "http" and got.vendor_class == "HTTPClient"
            assert got.boot_file.endswith(f"/shim-grub/{request.mac.colon.replace(':', '-')}.img")
        else:
            assert got == SHIM
    else:
        assert got == decide(request, ctx)

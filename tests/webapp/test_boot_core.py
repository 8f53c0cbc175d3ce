"""The boot core asked at every phase, without sockets.

1. The decision table's registration axis: registration (unknown, discovered, install, installed, local) x
   firmware (BIOS PXE, UEFI PXE, UEFI HTTP Boot, iPXE) x mode (full, proxy) x ``local_boot`` -> what the
   real DHCP service sends, with the real core over a real store and the sample profiles.
2. One machine walked through DISCOVER -> OFFER -> TFTP loader -> boot.ipxe -> answer file -> done -> the
   next DISCOVER gets no boot file; the same for a UEFI HTTP Boot client.
3. The DHCP hot path writes nothing outside the group commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from netboot.config import DhcpConfig
from netboot.daemon import loader_resolver
from netboot.dhcp.leases import LeasePool
from netboot.dhcp.service import DhcpService, Ingress
from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode
from netboot.runtime import Runtime
from netboot.servers.tftp import ChainResolver, FileSource, RootResolver

from .conftest import FAKE_IPXE_EFI, SERVER, TOKEN_RE, RuntimeFactory, app_for, register

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
SUBNET = IPv4Network("10.0.0.0/24")
FULL = DhcpConfig(mode="full", subnet=SUBNET, range_first=IPv4Address("10.0.0.100"),
                  range_last=IPv4Address("10.0.0.150"))
PROXY = DhcpConfig(mode="proxy")
INGRESS = Ingress(ifindex=2, ifname="nb0", local_ip=IPv4Address(SERVER), network=SUBNET,
                  src=("0.0.0.0", 68), port=67)
NOW = 1_800_000_000.0
MAC = MacAddress.parse("52:54:00:12:34:56")
SCRIPT_URL = f"http://{SERVER}:8080/boot.ipxe?mac=${{net0/mac}}"

#: firmware -> (capture of its DISCOVER, the boot file it gets when it gets one)
FIRMWARE = {
    "bios-pxe": ("", None),  # no capture of a plain BIOS PXE ROM: crafted by bios_pxe()
    "uefi-pxe": ("uefi-pxe-0-discover.bin", "ipxe.efi"),
    "uefi-http": ("uefi-http-0-discover.bin", f"http://{SERVER}:8080/loaders/ipxe.efi"),
    "ipxe": ("bios-ipxe-0-discover.bin", SCRIPT_URL),
}


def capture(name: str, mac: MacAddress = MAC) -> DhcpPacket:
    packet = decode((FIXTURES / name).read_bytes())
    return replace(packet, chaddr=mac.packed + bytes(10))


def bios_pxe(mac: MacAddress = MAC) -> DhcpPacket:
    """A SeaBIOS-era PXE ROM's DISCOVER (no iPXE user class): arch 0, PXEClient vendor class."""
    return capture("uefi-pxe-0-discover.bin", mac).with_options(
        {Opt.CLIENT_ARCH: b"\x00\x00", Opt.VENDOR_CLASS: b"PXEClient:Arch:00000:UNDI:002001"}
    )


def discover(firmware: str, mac: MacAddress = MAC) -> DhcpPacket:
    return bios_pxe(mac) if firmware == "bios-pxe" else capture(FIRMWARE[firmware][0], mac)


def expected_file(firmware: str) -> str:
    return "undionly.kpxe" if firmware == "bios-pxe" else str(FIRMWARE[firmware][1])


def service_for(rt: Runtime, config: DhcpConfig) -> DhcpService:
    pool = None
    if config.mode == "full":
        assert config.range_first is not None and config.range_last is not None
        pool = LeasePool(config.range_first, config.range_last, lease_time=3600, repo=rt.store.leases)
    return DhcpService(config, booter=rt.core, recorder=rt.recorder, pool=pool)


def boot_file_of(service: DhcpService, rt: Runtime, packet: DhcpPacket) -> str | None:
    """What the service answers: the boot file, "" for a reply without one, None for silence."""
    replies = service.handle(packet, INGRESS, NOW)
    rt.store.flush()  # what the transport does before it sends
    if not replies:
        return None
    assert len(replies) == 1
    reply = decode(replies[0].data)
    option = reply.get(Opt.BOOTFILE)
    if option is not None:
        return option.decode()
    return reply.file.rstrip(b"\0").decode()


def set_state(rt: Runtime, state: str, local_boot: str | None = None) -> None:
    if state == "unknown":
        return
    if state == "discovered":
        rt.store.systems.seen(MAC, arch=None, uuid=None, now=NOW)
        return
    register(rt, MAC.colon)
    system = rt.store.systems.get(MAC)
    assert system is not None
    rt.store.systems.save(replace(system, state=SystemState(state), local_boot=local_boot))


STATES = ["unknown", "discovered", "install", "installed", "local"]


@pytest.mark.parametrize("mode", ["full", "proxy"])
@pytest.mark.parametrize("firmware", sorted(FIRMWARE))
@pytest.mark.parametrize("state", STATES)
def test_registration_axis(make_runtime: RuntimeFactory, state: str, firmware: str, mode: str) -> None:
    """Next boot local (and local_boot unset: skip) -> no boot file; silence in proxy mode."""
    rt = make_runtime()
    set_state(rt, state)
    got = boot_file_of(service_for(rt, FULL if mode == "full" else PROXY), rt, discover(firmware))
    if state == "install":
        assert got == expected_file(firmware)
    elif mode == "proxy":
        assert got is None, "proxy mode stays silent for a machine that boots its disk"
    else:
        assert got == "", "full mode leases the address without a boot file"


@pytest.mark.parametrize("where", ["system", "group", "profile", "site"])
@pytest.mark.parametrize("method", ["exit", "sanboot", "auto"])
def test_local_boot_hand_back_keeps_the_ipxe_detour(
    make_runtime: RuntimeFactory, profiles_copy: Path, where: str, method: str
) -> None:
    """local_boot exit/sanboot/auto at any level gives the loader, and the script leaves the iPXE way."""
    if where == "profile":
        path = profiles_copy / "debian12-preseed" / "profile.yaml"
        path.write_text(path.read_text() + f"local_boot: {method}\n")
    if where == "group":
        (profiles_copy / "_groups").mkdir(exist_ok=True)
        (profiles_copy / "_groups" / "lab.yaml").write_text(
            f"selector:\n  mac: {MAC.colon}\nprofile: debian12-preseed\nlocal_boot: {method}\n"
        )
    changes: dict[str, Any] = {"profiles_dir": profiles_copy}
    if where == "site":
        changes["local_boot"] = method
    rt = make_runtime(**changes)
    assert not rt.profile_errors, rt.profile_errors
    set_state(rt, "installed", local_boot=method if where == "system" else None)
    assert boot_file_of(service_for(rt, PROXY), rt, discover("uefi-pxe")) == "ipxe.efi"
    script = app_for(rt).test_client().get(f"/boot.ipxe?mac={MAC.colon}").get_data(as_text=True)
    assert ("sanboot" in script) == (method in ("sanboot", "auto")), script
    assert "exit" in script


def test_the_system_overrides_its_profile(make_runtime: RuntimeFactory, profiles_copy: Path) -> None:
    path = profiles_copy / "debian12-preseed" / "profile.yaml"
    path.write_text(path.read_text() + "local_boot: exit\n")
    rt = make_runtime(profiles_dir=profiles_copy)
    set_state(rt, "installed", local_boot="skip")
    assert boot_file_of(service_for(rt, PROXY), rt, discover("uefi-pxe")) is None


# ------------------------------------------------------------------------------------------- the walk


@pytest.fixture
def walker(make_runtime: RuntimeFactory, tmp_path: Path) -> Iterator[tuple[Runtime, DhcpService, Any]]:
    rt = make_runtime()
    root = tmp_path / "tftp"
    root.mkdir()
    resolver = loader_resolver(rt, ChainResolver(rt.core.tftp_file, RootResolver(root)))
    yield rt, service_for(rt, FULL), resolver


def tftp_bytes(resolver: Any, name: str, client: str) -> bytes:
    source = resolver(name, (client, 2000))
    assert isinstance(source, FileSource)
    try:
        return bytes(source.read(0, source.size))
    finally:
        source.close()


def dora(rt: Runtime, service: DhcpService, packet: DhcpPacket) -> tuple[str, IPv4Address]:
    """DISCOVER then REQUEST; the boot file of the ACK and the address."""
    offers = service.handle(packet, INGRESS, NOW)
    rt.store.flush()
    offer = decode(offers[0].data)
    request = packet.with_options({
        Opt.MESSAGE_TYPE: bytes([MessageType.REQUEST]),
        Opt.REQUESTED_IP: offer.yiaddr.packed,
        Opt.SERVER_ID: IPv4Address(SERVER).packed,
    })
    acks = service.handle(request, INGRESS, NOW)
    rt.store.flush()
    ack = decode(acks[0].data)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    option = ack.get(Opt.BOOTFILE)
    return (option.decode() if option else ack.file.rstrip(b"\0").decode()), ack.yiaddr


@pytest.mark.parametrize("firmware", ["uefi-pxe", "uefi-http"])
def test_one_machine_through_every_phase(walker: tuple[Runtime, DhcpService, Any], firmware: str) -> None:
    rt, service, resolver = walker
    register(rt, MAC.colon)
    client = app_for(rt).test_client()
    # firmware DHCP: the loader, by TFTP or as an HTTP Boot URL
    boot_file, ip = dora(rt, service, discover(firmware))
    assert boot_file == expected_file(firmware)
    if firmware == "uefi-pxe":
        assert tftp_bytes(resolver, boot_file, str(ip)) == FAKE_IPXE_EFI
    else:
        assert client.get(boot_file.removeprefix(f"http://{SERVER}:8080")).data == FAKE_IPXE_EFI
    # iPXE's own DHCP: the script URL, never the loader again
    ipxe_file, _ = dora(rt, service, capture("uefi-ipxerom-0-discover.bin"))
    assert ipxe_file == SCRIPT_URL
    ipxe_ip = rt.recorder.addresses_of(MAC)[0]  # the address iPXE's own DHCP got
    machine = {"REMOTE_ADDR": ipxe_ip}
    neighbour = {"REMOTE_ADDR": "10.0.0.250"}
    # a neighbour asking for the machine's script gets a valid script without the token
    stolen = client.get(f"/boot.ipxe?mac={MAC.colon}", environ_base=neighbour).get_data(as_text=True)
    assert "preseed.cfg" in stolen and TOKEN_RE.search(stolen) is None
    script = client.get(f"/boot.ipxe?mac={MAC.colon}", environ_base=machine)
    assert script.status_code == 200
    text = script.get_data(as_text=True)
    token = TOKEN_RE.search(text)
    assert token is not None and "preseed.cfg" in text
    answer_path = f"/answer/{MAC.colon}/preseed.cfg?token={token.group(1)}"
    assert client.get(answer_path, environ_base=neighbour).status_code == 403  # not from its address
    answer = client.get(answer_path, environ_base=machine)
    assert answer.status_code == 200 and "d-i " in answer.get_data(as_text=True)
    done_path = f"/done/{MAC.colon}?token={token.group(1)}"
    assert client.post(done_path, environ_base=neighbour).status_code == 403
    assert client.post(done_path, environ_base=machine).status_code == 200
    actions = [(e.actor, e.action, e.ok) for e in rt.store.audit.list(limit=10)]
    assert (f"machine {MAC} at 10.0.0.250", "install-done", False) in actions
    assert (f"machine {MAC} at {ipxe_ip}", "install-done", True) in actions
    # the next netboot: no boot file, so the firmware goes to its disk
    after, _ = dora(rt, service, discover(firmware))
    assert after == ""
    proxy = service_for(rt, PROXY)
    assert boot_file_of(proxy, rt, discover(firmware)) is None
    system = rt.store.systems.get(MAC)
    assert system is not None and system.state is SystemState.INSTALLED and system.token is None


# ----------------------------------------------------------------------------- hot path: no writes


def test_dhcp_handle_writes_nothing_outside_the_group_commit(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    register(rt, MAC.colon)
    service = service_for(rt, FULL)
    statements: list[str] = []
    engine = rt.store.engine

    handler = threading.get_ident()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # only what the DHCP thread itself executes: the event writer batches in its own thread
        if threading.get_ident() == handler:
            statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        packets = [discover("uefi-pxe", MAC)] + [
            discover(fw, MacAddress.parse(f"52:54:00:00:99:{n:02x}")) for n, fw in
            enumerate(["bios-pxe", "uefi-pxe", "uefi-http", "ipxe"] * 5)
        ]
        for packet in packets:
            assert service.handle(packet, INGRESS, NOW)
        writes = [s for s in statements if s in ("INSERT", "UPDATE", "DELETE", "COMMIT")]
        assert writes == [], f"handle() wrote to the store: {writes}"
        statements.clear()
        rt.store.flush()
        assert {"INSERT", "UPDATE"} & set(statements), "the group commit writes the seen machines"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    seen = {s.mac for s in rt.store.systems.list() if s.last_seen is not None}
    assert MAC in seen and len(seen) == 21

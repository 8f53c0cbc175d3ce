"""A hostile install network (issue 15, findings 1 and 2): install tokens a neighbour cannot use, and menu
choices only from the machine that was served the menu.

The machine learns its address the way it does on the wire: through the real DHCP service (full mode:
the lease netboot gave it; proxy mode: the address it reported), or, with DHCP off, by being the first to
fetch its script. The neighbour is another address on the same segment that knows the victim's MAC.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from flask.testing import FlaskClient

from netboot.boot.tokens import TOKEN_REFRESH
from netboot.config import DhcpConfig
from netboot.dhcp.leases import LeasePool
from netboot.dhcp.service import DhcpService, Ingress
from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode
from netboot.runtime import Runtime

from .conftest import MAC, SERVER, TOKEN_RE, UNKNOWN, RuntimeFactory, app_for, register, stored

VICTIM = MacAddress.parse(MAC)
NEIGHBOUR = {"REMOTE_ADDR": "10.0.0.250"}
SUBNET = IPv4Network("10.0.0.0/24")
INGRESS = Ingress(ifindex=2, ifname="nb0", local_ip=IPv4Address(SERVER), network=SUBNET,
                  src=("0.0.0.0", 68), port=67)


def packet(kind: MessageType, mac: MacAddress, *options: tuple[int, bytes]) -> DhcpPacket:
    pxe = ((Opt.CLIENT_ARCH, b"\x00\x07"), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003000"))
    return DhcpPacket(chaddr=mac.packed + bytes(10), xid=7,
                      options=((Opt.MESSAGE_TYPE, bytes([kind])), *pxe, *options))


def lease_from_netboot(rt: Runtime, mac: MacAddress) -> str:
    """A full DORA with the real DHCP service; the address netboot leased."""
    first, last = IPv4Address("10.0.0.100"), IPv4Address("10.0.0.150")
    pool = LeasePool(first, last, lease_time=600, repo=rt.store.leases)
    config = DhcpConfig(mode="full", subnet=SUBNET, range_first=first, range_last=last)
    service = DhcpService(config, booter=rt.core, recorder=rt.recorder, pool=pool)
    offer = decode(service.handle(packet(MessageType.DISCOVER, mac), INGRESS, 1.0)[0].data)
    request = packet(MessageType.REQUEST, mac, (Opt.REQUESTED_IP, offer.yiaddr.packed),
                     (Opt.SERVER_ID, IPv4Address(SERVER).packed))
    ack = decode(service.handle(request, INGRESS, 1.0)[0].data)
    rt.store.flush()
    assert ack.message_type is MessageType.ACK
    return str(ack.yiaddr)


def script_token(client: FlaskClient, mac: str, env: dict[str, str]) -> str | None:
    text = client.get("/boot.ipxe", query_string={"mac": mac}, environ_base=env).get_data(as_text=True)
    assert "preseed.cfg" in text  # a valid install script either way
    found = TOKEN_RE.search(text)
    return found.group(1) if found else None


def test_a_neighbour_gets_no_token_for_a_machine_leased_by_netboot(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    register(rt, boot=False)
    machine = {"REMOTE_ADDR": lease_from_netboot(rt, VICTIM)}
    client = app_for(rt).test_client()
    assert script_token(client, MAC, NEIGHBOUR) is None
    pxelinux = rt.core.tftp_file("pxelinux.cfg/01-52-54-00-12-34-56", ("10.0.0.250", 2000))
    assert pxelinux is not None and b"token=" not in pxelinux  # nor over TFTP
    token = script_token(client, MAC, machine)
    assert token is not None
    answer = f"/answer/{MAC}/preseed.cfg?token={token}"
    assert client.get(answer, environ_base=NEIGHBOUR).status_code == 403  # the machine's own token, elsewhere
    assert client.get(answer, environ_base=machine).status_code == 200


def test_the_token_expires_after_its_script_and_dies_at_done(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    token = register(rt)  # served from 127.0.0.1, the machine's address
    client = app_for(rt).test_client()
    answer = f"/answer/{MAC}/preseed.cfg?token={token}"
    assert client.get(answer).status_code == 200
    system = stored(rt, MAC)
    assert system is not None and system.token_expires is not None
    rt.store.systems.save(replace(system, token_expires=system.token_expires - rt.core.site.token_ttl - 1))
    assert client.get(answer).status_code == 403  # expired
    assert script_token(client, MAC, {"REMOTE_ADDR": "127.0.0.1"}) == token  # a new script revives it
    assert client.get(answer).status_code == 200
    assert client.post(f"/done/{MAC}?token={token}").status_code == 200
    assert client.get(answer).status_code == 403


def test_a_script_asked_again_soon_writes_no_new_binding(make_runtime: RuntimeFactory) -> None:
    """A repeated fetch within TOKEN_REFRESH keeps the stored binding (no store write per request); an
    older binding, or another address of the machine, is written again."""
    rt = make_runtime()
    token = register(rt)  # served from 127.0.0.1, the machine's address
    client = app_for(rt).test_client()
    first = stored(rt, MAC)
    assert first is not None and first.token_ip == "127.0.0.1" and first.token_expires is not None
    assert script_token(client, MAC, {"REMOTE_ADDR": "127.0.0.1"}) == token
    assert stored(rt, MAC) == first  # unchanged: nothing written
    older = replace(first, token_expires=first.token_expires - TOKEN_REFRESH - 1)
    rt.store.systems.save(older)
    assert script_token(client, MAC, {"REMOTE_ADDR": "127.0.0.1"}) == token
    renewed = stored(rt, MAC)
    assert renewed is not None and renewed.token_expires is not None
    assert renewed.token_expires > first.token_expires - 1  # a full ttl again
    rt.recorder.learn("10.0.0.77", VICTIM)  # the machine's second address (a second NIC, a new lease)
    assert script_token(client, MAC, {"REMOTE_ADDR": "10.0.0.77"}) == token
    moved = stored(rt, MAC)
    assert moved is not None and moved.token_ip == "10.0.0.77"


def test_a_token_never_served_in_a_script_is_refused(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    token = register(rt, boot=False)
    rt.recorder.learn("127.0.0.1", VICTIM)
    assert app_for(rt).test_client().get(f"/answer/{MAC}/preseed.cfg?token={token}").status_code == 403


def test_proxy_mode_binds_to_the_address_the_machine_reported(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime()
    register(rt, boot=False)
    service = DhcpService(DhcpConfig(mode="proxy"), booter=rt.core, recorder=rt.recorder)
    # the PXE client's REQUEST to the network's DHCP server, seen by the proxy: it names its address
    service.handle(packet(MessageType.REQUEST, VICTIM, (Opt.REQUESTED_IP, IPv4Address("10.0.0.42").packed),
                          (Opt.SERVER_ID, IPv4Address("10.0.0.2").packed)), INGRESS, 1.0)
    client = app_for(rt).test_client()
    assert script_token(client, MAC, NEIGHBOUR) is None
    assert script_token(client, MAC, {"REMOTE_ADDR": "10.0.0.42"}) is not None


def test_with_dhcp_off_the_first_address_to_fetch_the_script_is_the_machine(
    make_runtime: RuntimeFactory,
) -> None:
    rt = make_runtime(dhcp=DhcpConfig(mode="off"))
    register(rt, boot=False)
    client = app_for(rt).test_client()
    first = {"REMOTE_ADDR": "10.0.0.60"}
    token = script_token(client, MAC, first)
    assert token is not None
    assert script_token(client, MAC, NEIGHBOUR) is None
    assert client.get(f"/answer/{MAC}/preseed.cfg?token={token}", environ_base=NEIGHBOUR).status_code == 403
    assert client.get(f"/answer/{MAC}/preseed.cfg?token={token}", environ_base=first).status_code == 200


# ------------------------------------------------------------------------------------------- the menu


@pytest.fixture
def menu_rt(make_runtime: RuntimeFactory) -> Runtime:
    rt = make_runtime(unknown_default="menu")
    rt.recorder.learn("127.0.0.1", MacAddress.parse(UNKNOWN))  # the unknown machine's own DHCP
    return rt


def choose(client: FlaskClient, env: dict[str, str] | None = None) -> str:
    return client.get("/boot.ipxe", query_string={"mac": UNKNOWN, "profile": "rocky9-kickstart"},
                      environ_base=env or {}).get_data(as_text=True)


def test_a_neighbour_cannot_arm_an_install_from_the_menu(menu_rt: Runtime) -> None:
    client = app_for(menu_rt).test_client()
    client.get("/boot.ipxe", query_string={"mac": UNKNOWN})  # the machine is shown the menu
    choose(client, NEIGHBOUR)  # the neighbour answers it
    system = stored(menu_rt, UNKNOWN)
    assert system is not None and system.profile is None and system.token is None
    refused = [e for e in menu_rt.store.audit.list(limit=10) if e.action == "menu-choice"]
    assert refused and not refused[0].ok and "10.0.0.250" in refused[0].actor


def test_a_choice_without_a_menu_or_too_late_is_refused(menu_rt: Runtime) -> None:
    client = app_for(menu_rt).test_client()
    choose(client)  # no menu served yet
    assert stored(menu_rt, UNKNOWN) is None or stored(menu_rt, UNKNOWN).profile is None  # type: ignore[union-attr]
    menu_rt.core.site = replace(menu_rt.core.site, menu_ttl=-1.0)  # a menu whose time is up once served
    client.get("/boot.ipxe", query_string={"mac": UNKNOWN})
    choose(client)
    system = stored(menu_rt, UNKNOWN)
    assert system is not None and system.profile is None


def test_the_machine_at_its_console_chooses_and_it_is_audited(menu_rt: Runtime) -> None:
    client = app_for(menu_rt).test_client()
    client.get("/boot.ipxe", query_string={"mac": UNKNOWN})
    script = choose(client)
    system = stored(menu_rt, UNKNOWN)
    assert system is not None and system.profile == "rocky9-kickstart" and system.token in script
    taken = [e for e in menu_rt.store.audit.list(limit=10) if e.action == "menu-choice"]
    assert taken and taken[0].ok and taken[0].detail["profile"] == "rocky9-kickstart"

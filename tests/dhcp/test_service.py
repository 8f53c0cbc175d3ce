"""DhcpService, Kea-forge style: one test per RFC requirement, real firmware packets and crafted ones.

No sockets: packets go in through ``handle()`` with an :class:`Ingress` built here, and every reply comes
back as bytes that must decode (and re-encode) with the codec. Full mode runs over a real SQLite store.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netboot.arch import Arch
from netboot.boot.classify import classify
from netboot.boot.core import BootCore
from netboot.boot.ports import Site
from netboot.config import DhcpConfig, Reservation
from netboot.dhcp.leases import ClientKey, LeasePool
from netboot.dhcp.service import MAX_REPLY_SIZE, DhcpService, Ingress, Outgoing
from netboot.events import EventRecorder, MemorySink
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet
from netboot.protocol.dhcp import BROADCAST_FLAG, DhcpPacket, MessageType, Op, Opt, decode, encode
from netboot.protocol.pxe import parse_encapsulated
from netboot.runtime import StoreInventory
from netboot.store import Store, open_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dhcp"
EMPTY_PROFILES = ProfileSet(Path("/nonexistent"), {}, [])

SERVER = IPv4Address("10.88.0.1")
SUBNET = IPv4Network("10.88.0.0/24")
FIRST, LAST = IPv4Address("10.88.0.100"), IPv4Address("10.88.0.199")
ROUTER = IPv4Address("10.88.0.254")
DNS = (IPv4Address("10.88.0.1"), IPv4Address("10.88.0.2"))
LEASE = 3600
HTTP_PORT = 8080
LOADERS = {Arch.BIOS: "undionly.kpxe", Arch.UEFI_X64: "ipxe.efi"}
SCRIPT = f"http://{SERVER}:{HTTP_PORT}/boot.ipxe?mac=${{net0/mac}}"
NOW = 1_700_000_000.0

FIXTURE_MAC = MacAddress.parse("52:54:00:e2:e0:01")  # the NIC in every capture
CLIENT = MacAddress.parse("52:54:00:10:00:01")
OTHER = MacAddress.parse("52:54:00:10:00:02")
RESERVED_MAC = MacAddress.parse("52:54:00:10:00:99")
RESERVED_IP = IPv4Address("10.88.0.50")

INGRESS = Ingress(ifindex=3, ifname="nb0", local_ip=SERVER, network=SUBNET, src=("0.0.0.0", 68), port=67)
PROXY_INGRESS = Ingress(
    ifindex=3, ifname="nb0", local_ip=SERVER, network=SUBNET, src=("10.88.0.135", 68), port=4011
)

FULL_CONFIG = DhcpConfig(
    mode="full",
    subnet=SUBNET,
    range_first=FIRST,
    range_last=LAST,
    router=ROUTER,
    dns_servers=DNS,
    domain="lab.test",
    lease_time=LEASE,
    reservations=(Reservation(RESERVED_MAC, RESERVED_IP, "web1"),),
)
PROXY_CONFIG = DhcpConfig(mode="proxy")


def fixture(name: str) -> DhcpPacket:
    return decode((FIXTURES / name).read_bytes())


def packet(
    kind: MessageType, mac: MacAddress = CLIENT, *options: tuple[int, bytes], **fields: object
) -> DhcpPacket:
    header: dict[str, object] = {"xid": 0x1234ABCD, "chaddr": mac.packed, "secs": 3, **fields}
    opts = (
        (Opt.MESSAGE_TYPE, bytes([kind])),
        (Opt.PARAM_REQUEST, bytes([1, 3, 6, 15, 28, 51, 54])),
        *options,
    )
    return DhcpPacket(options=opts, **header)  # type: ignore[arg-type]


def requested(address: IPv4Address) -> tuple[int, bytes]:
    return (Opt.REQUESTED_IP, address.packed)


def server_id(address: IPv4Address = SERVER) -> tuple[int, bytes]:
    return (Opt.SERVER_ID, address.packed)


def u32(value: bytes | None) -> int:
    assert value is not None and len(value) == 4
    return int(struct.unpack("!I", value)[0])


@dataclass
class Harness:
    service: DhcpService
    sink: MemorySink
    pool: LeasePool | None
    store: Store
    recorder: EventRecorder

    @property
    def seen(self) -> list[MacAddress]:
        """MACs the boot core staged as seen booting, once the transport's group commit wrote them."""
        self.store.flush()
        return [s.mac for s in self.store.systems.list() if s.last_seen is not None]

    def send(self, request: DhcpPacket, *, ingress: Ingress = INGRESS, now: float = NOW) -> list[Outgoing]:
        """Hand one packet to the service; every reply must be a well-formed BOOTREPLY for it."""
        outs = self.service.handle(request, ingress, now)
        for out in outs:
            reply = check_reply(out, request)
            assert out.ifindex == ingress.ifindex
            assert reply.message_type in (MessageType.OFFER, MessageType.ACK, MessageType.NAK)
        return outs

    def one(self, request: DhcpPacket, **kwargs: object) -> tuple[Outgoing, DhcpPacket]:
        outs = self.send(request, **kwargs)  # type: ignore[arg-type]
        assert len(outs) == 1, f"expected one reply, got {len(outs)}"
        return outs[0], decode(outs[0].data)

    def silent(self, request: DhcpPacket, **kwargs: object) -> None:
        assert self.send(request, **kwargs) == []  # type: ignore[arg-type]

    def bind(self, mac: MacAddress = CLIENT, *options: tuple[int, bytes], now: float = NOW) -> IPv4Address:
        """A whole DORA; returns the address ACKed."""
        _, offer = self.one(packet(MessageType.DISCOVER, mac, *options), now=now)
        _, ack = self.one(
            packet(MessageType.REQUEST, mac, requested(offer.yiaddr), server_id(), *options), now=now
        )
        assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
        return ack.yiaddr

    def events(self, mac: MacAddress | None = None) -> list[tuple[str, str]]:
        return [(e.phase, e.summary) for e in self.sink.events if mac is None or e.mac == mac]


def check_reply(out: Outgoing, request: DhcpPacket) -> DhcpPacket:
    """RFC 2131 table 3 fields every reply carries, and a clean codec round trip."""
    limit = min(max(576, request.max_message_size or 576), MAX_REPLY_SIZE)
    assert 300 <= len(out.data) <= MAX_REPLY_SIZE - 28, "BOOTP minimum 300 bytes, at most one Ethernet frame"
    reply = decode(out.data)
    if len(out.data) > limit - 28:  # over the client's maximum only when the reply cannot fit it at all
        with pytest.raises(ValueError):
            encode(reply, max_size=limit)
    assert decode(encode(reply, max_size=MAX_REPLY_SIZE)) == reply
    assert reply.op is Op.BOOTREPLY
    assert (reply.xid, reply.chaddr, reply.htype, reply.hlen) == (
        request.xid,
        request.chaddr,
        request.htype,
        request.hlen,
    )
    assert (reply.hops, reply.secs) == (0, 0)
    assert reply.giaddr == request.giaddr
    assert reply.flags == request.flags | (
        BROADCAST_FLAG if reply.message_type is MessageType.NAK and request.giaddr != IPv4Address(0) else 0
    )
    assert reply.server_id is not None, "option 54 is a MUST in OFFER, ACK and NAK"
    return reply


#: the site of these tests: unknown boot clients get the profile menu, so every one of them gets a loader
#: (what the firmware x loaders rows test); the registration axis has its own tests in tests/boot
SITE = Site(unknown_default="menu", http_port=HTTP_PORT, server_ip=SERVER, loaders=LOADERS)


def core_over(store: Store, recorder: EventRecorder, site: Site = SITE) -> BootCore:
    """The real boot core over the test's store, with no profiles loaded."""
    return BootCore(StoreInventory(store), lambda: EMPTY_PROFILES, recorder, site, store.audit)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'netboot.db'}")
    yield store
    store.close()


def make(store: Store, config: DhcpConfig, server_port: int | None = None) -> Harness:
    sink = MemorySink()
    pool = None
    if config.mode == "full":
        assert config.range_first is not None and config.range_last is not None
        pool = LeasePool(
            config.range_first,
            config.range_last,
            lease_time=config.lease_time,
            repo=store.leases,
            reservations={r.mac: r.ip for r in config.reservations},
            excluded=[SERVER, ROUTER],
        )
    recorder = EventRecorder(sink)
    service = DhcpService(
        config, booter=core_over(store, recorder), recorder=recorder, pool=pool, server_port=server_port
    )
    return Harness(service, sink, pool, store, recorder)


@pytest.fixture
def full(store: Store) -> Harness:
    return make(store, FULL_CONFIG)


@pytest.fixture
def proxy(store: Store) -> Harness:
    return make(store, PROXY_CONFIG)


def in_range(address: IPv4Address) -> bool:
    return FIRST <= address <= LAST


# =========================================================================================== full mode
# -- DISCOVER -> OFFER (RFC 2131 4.3.1, table 3) ---------------------------------------------------------


def test_discover_gets_an_offer_with_lease_parameters(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER))
    assert offer.message_type is MessageType.OFFER
    assert in_range(offer.yiaddr)
    assert offer.ciaddr == IPv4Address(0)  # table 3: 0 in an OFFER
    assert offer.siaddr == IPv4Address(0) and offer.file == b""  # not a boot client: no boot fields
    assert offer.server_id == SERVER
    lease, t1, t2 = (
        u32(offer.get(Opt.LEASE_TIME)),
        u32(offer.get(Opt.RENEWAL_T1)),
        u32(offer.get(Opt.REBINDING_T2)),
    )
    assert lease == LEASE
    assert (t1, t2) == (LEASE // 2, LEASE * 7 // 8)  # RFC 2131 4.4.5 defaults: 0.5 and 0.875
    assert t1 < t2 < lease
    assert offer.get(Opt.SUBNET_MASK) == IPv4Address("255.255.255.0").packed
    assert offer.get(Opt.ROUTER) == ROUTER.packed
    assert offer.get(Opt.DNS) == DNS[0].packed + DNS[1].packed
    assert offer.get(Opt.DOMAIN_NAME) == b"lab.test"
    assert offer.get(Opt.BROADCAST) == IPv4Address("10.88.0.255").packed
    for absent in (
        Opt.REQUESTED_IP,
        Opt.CLIENT_ID,
        Opt.RELAY_AGENT,
        Opt.VENDOR_CLASS,
        Opt.VENDOR_SPECIFIC,
        Opt.IPXE_ENCAP,
        Opt.MESSAGE,
    ):
        assert absent not in offer


def test_offer_honours_a_free_requested_address(full: Harness) -> None:
    wanted = IPv4Address("10.88.0.150")
    _, offer = full.one(packet(MessageType.DISCOVER, CLIENT, requested(wanted)))
    assert offer.yiaddr == wanted


@pytest.mark.parametrize("wanted", ["10.88.0.1", "10.88.0.254", "10.88.0.20", "192.168.1.5"])
def test_offer_ignores_a_requested_address_it_cannot_give(full: Harness, wanted: str) -> None:
    """Our own address, the router, outside the range, another network: the client gets a pool address."""
    _, offer = full.one(packet(MessageType.DISCOVER, CLIENT, requested(IPv4Address(wanted))))
    assert in_range(offer.yiaddr)


def test_retransmitted_discover_gets_the_same_offer(full: Harness) -> None:
    first = full.one(packet(MessageType.DISCOVER))[1].yiaddr
    for retry in range(1, 5):
        assert full.one(packet(MessageType.DISCOVER), now=NOW + 4 * retry)[1].yiaddr == first


def test_concurrent_discovers_get_different_addresses(full: Harness) -> None:
    macs = [MacAddress.from_bytes(bytes([0x52, 0x54, 0, 0x20, 0, n])) for n in range(30)]
    offers = [full.one(packet(MessageType.DISCOVER, mac))[1].yiaddr for mac in macs]
    assert len(set(offers)) == len(macs)
    assert all(in_range(address) for address in offers)


def test_pool_exhausted_means_no_offer(store: Store) -> None:
    small = DhcpConfig(mode="full", subnet=SUBNET, range_first=FIRST, range_last=IPv4Address("10.88.0.101"))
    h = make(store, small)
    h.bind(CLIENT)
    h.bind(OTHER)
    h.silent(packet(MessageType.DISCOVER, MacAddress.parse("52:54:00:10:00:03")))
    assert h.bind(CLIENT) in (FIRST, IPv4Address("10.88.0.101"))  # leaseholders are still served


def test_reservation_gets_its_address_and_hostname(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER, RESERVED_MAC, requested(IPv4Address("10.88.0.150"))))
    assert offer.yiaddr == RESERVED_IP
    assert offer.get(Opt.HOSTNAME) == b"web1"
    assert full.bind(RESERVED_MAC) == RESERVED_IP


def test_reserved_address_is_not_offered_to_others(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER, CLIENT, requested(RESERVED_IP)))
    assert offer.yiaddr != RESERVED_IP
    _, nak = full.one(packet(MessageType.REQUEST, CLIENT, requested(RESERVED_IP)))
    assert nak.message_type is MessageType.NAK


# -- REQUEST (RFC 2131 4.3.2) ----------------------------------------------------------------------------


def test_request_selecting_gets_an_ack(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER))
    out, ack = full.one(packet(MessageType.REQUEST, CLIENT, requested(offer.yiaddr), server_id()))
    assert ack.message_type is MessageType.ACK
    assert ack.yiaddr == offer.yiaddr
    assert ack.server_id == SERVER
    assert u32(ack.get(Opt.LEASE_TIME)) == LEASE
    assert ack.get(Opt.SUBNET_MASK) == IPv4Address("255.255.255.0").packed
    assert out.dest == (str(offer.yiaddr), 68) and out.arp == (offer.yiaddr, CLIENT)
    assert full.pool is not None
    lease = full.pool.lease_of(ClientKey(CLIENT, None), NOW)
    assert lease is not None and (lease.ip, lease.expires) == (offer.yiaddr, NOW + LEASE)
    # staged for the transport's flush (durable before the ACK goes out)
    assert full.store.leases.flush() == 1
    assert [(row.ip, row.mac) for row in full.store.leases.all()] == [(offer.yiaddr, CLIENT)]


def test_request_for_another_server_is_silent(full: Harness) -> None:
    """The client chose another server's OFFER: not ours to answer, and nothing is bound."""
    _, offer = full.one(packet(MessageType.DISCOVER))
    full.silent(
        packet(MessageType.REQUEST, CLIENT, requested(offer.yiaddr), server_id(IPv4Address("10.88.0.2")))
    )
    assert full.pool is not None and full.pool.lease_of(ClientKey(CLIENT, None), NOW) is None


def test_request_selecting_an_address_held_for_another_client_is_naked(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER, OTHER))
    _, nak = full.one(packet(MessageType.REQUEST, CLIENT, requested(offer.yiaddr), server_id()))
    assert nak.message_type is MessageType.NAK


def test_init_reboot_on_the_wrong_network_is_naked(full: Harness) -> None:
    """RFC 2131 4.3.2: INIT-REBOOT with an address on another network gets a NAK, broadcast (4.1)."""
    out, nak = full.one(packet(MessageType.REQUEST, CLIENT, requested(IPv4Address("192.168.1.5"))))
    assert nak.message_type is MessageType.NAK
    assert (nak.ciaddr, nak.yiaddr, nak.siaddr) == (IPv4Address(0),) * 3
    assert nak.file == b"" and nak.sname == b""
    assert nak.server_id == SERVER
    assert nak.get(Opt.MESSAGE)  # RFC 2131 table 3: a message SHOULD say why
    for absent in (Opt.LEASE_TIME, Opt.RENEWAL_T1, Opt.REBINDING_T2, Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS):
        assert absent not in nak
    assert out.dest == ("255.255.255.255", 68) and out.arp is None


def test_init_reboot_with_its_own_address_is_acked(full: Harness) -> None:
    bound = full.bind()
    _, ack = full.one(packet(MessageType.REQUEST, CLIENT, requested(bound)), now=NOW + 100)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == bound
    assert u32(ack.get(Opt.LEASE_TIME)) == LEASE


def test_init_reboot_with_another_clients_address_is_naked(full: Harness) -> None:
    theirs = full.bind(OTHER)
    _, nak = full.one(packet(MessageType.REQUEST, CLIENT, requested(theirs)))
    assert nak.message_type is MessageType.NAK
    assert full.pool is not None and full.pool.lease_of(ClientKey(OTHER, None), NOW) is not None


def test_renewing_is_acked_by_unicast_to_ciaddr(full: Harness) -> None:
    """RFC 2131 4.3.2 RENEWING: ciaddr set, no 50/54; 4.1: the reply goes to ciaddr, no ARP trick needed."""
    bound = full.bind()
    later = NOW + LEASE // 2
    out, ack = full.one(packet(MessageType.REQUEST, CLIENT, ciaddr=bound), now=later)
    assert ack.message_type is MessageType.ACK
    assert (ack.ciaddr, ack.yiaddr) == (bound, bound)
    assert out.dest == (str(bound), 68) and out.arp is None
    assert full.pool is not None
    lease = full.pool.lease_of(ClientKey(CLIENT, None), later)
    assert lease is not None and lease.expires == later + LEASE and lease.starts == NOW


def test_rebinding_is_acked(full: Harness) -> None:
    """REBINDING: like RENEWING but broadcast by the client; ciaddr still decides where the ACK goes."""
    bound = full.bind()
    later = NOW + LEASE * 7 // 8
    out, ack = full.one(packet(MessageType.REQUEST, CLIENT, ciaddr=bound, flags=BROADCAST_FLAG), now=later)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == bound
    assert out.dest == (str(bound), 68)


def test_renewing_another_clients_address_is_naked(full: Harness) -> None:
    full.bind(CLIENT)
    theirs = full.bind(OTHER)
    out, nak = full.one(packet(MessageType.REQUEST, CLIENT, ciaddr=theirs))
    assert nak.message_type is MessageType.NAK
    assert nak.ciaddr == IPv4Address(0)  # RFC 2131 table 3: ciaddr is 0 in a NAK
    assert out.dest == ("255.255.255.255", 68)


def test_rebinding_without_any_record_is_silent(full: Harness) -> None:
    """A client we have no record of, rebinding an address that is not free: another server's client."""
    theirs = full.bind(OTHER)
    full.silent(packet(MessageType.REQUEST, CLIENT, ciaddr=theirs, flags=BROADCAST_FLAG))


def test_request_without_any_address_is_silent(full: Harness) -> None:
    full.silent(packet(MessageType.REQUEST))


# -- DECLINE, RELEASE, INFORM (RFC 2131 4.3.3 - 4.3.5) ---------------------------------------------------


def test_decline_quarantines_the_address(full: Harness) -> None:
    bad = full.bind()
    full.silent(packet(MessageType.DECLINE, CLIENT, requested(bad), server_id()))  # never answered
    assert full.pool is not None and full.pool.lease_of(ClientKey(CLIENT, None), NOW + 1) is None
    _, offer = full.one(packet(MessageType.DISCOVER), now=NOW + 1)
    assert offer.yiaddr != bad
    _, other = full.one(packet(MessageType.DISCOVER, OTHER, requested(bad)), now=NOW + 1)
    assert other.yiaddr != bad


def test_decline_naming_another_server_is_ignored(full: Harness) -> None:
    bound = full.bind()
    full.silent(packet(MessageType.DECLINE, CLIENT, requested(bound), server_id(IPv4Address("10.88.0.2"))))
    assert full.pool is not None and full.pool.lease_of(ClientKey(CLIENT, None), NOW) is not None


def test_release_frees_the_address_and_keeps_affinity(full: Harness) -> None:
    bound = full.bind()
    full.silent(packet(MessageType.RELEASE, CLIENT, server_id(), ciaddr=bound), now=NOW + 10)
    assert full.pool is not None and full.pool.lease_of(ClientKey(CLIENT, None), NOW + 10) is None
    assert ("dhcp", f"RELEASE {bound}") in full.events(CLIENT)
    full.bind(OTHER, now=NOW + 20)  # a newcomer gets a fresh address...
    assert full.bind(CLIENT, now=NOW + 30) == bound  # ...and the old client its old one


def test_release_of_another_clients_address_is_ignored(full: Harness) -> None:
    theirs = full.bind(OTHER)
    full.silent(packet(MessageType.RELEASE, CLIENT, server_id(), ciaddr=theirs))
    assert full.pool is not None and full.pool.lease_of(ClientKey(OTHER, None), NOW) is not None


def test_inform_gets_an_ack_without_a_lease(full: Harness) -> None:
    """RFC 2131 4.3.5: ACK with configuration, no yiaddr, no lease time, unicast to ciaddr."""
    static = IPv4Address("10.88.0.77")
    out, ack = full.one(packet(MessageType.INFORM, CLIENT, ciaddr=static))
    assert ack.message_type is MessageType.ACK
    assert ack.yiaddr == IPv4Address(0) and ack.ciaddr == static
    for absent in (Opt.LEASE_TIME, Opt.RENEWAL_T1, Opt.REBINDING_T2):
        assert absent not in ack
    assert ack.get(Opt.SUBNET_MASK) == IPv4Address("255.255.255.0").packed
    assert ack.get(Opt.ROUTER) == ROUTER.packed and ack.get(Opt.DNS) == DNS[0].packed + DNS[1].packed
    assert out.dest == (str(static), 68) and out.arp is None
    assert full.pool is not None and full.pool.leases() == []


# -- options echoed: 61 (RFC 6842), 82 (RFC 3046) --------------------------------------------------------

CLIENT_ID = (
    Opt.CLIENT_ID,
    b"\xff\x00\x00\x00\x01\x00\x01\x2c\x1a\xe3\x52\x54\x00\x10\x00\x01",
)  # RFC 4361 style
RELAY_INFO = (Opt.RELAY_AGENT, b"\x01\x06eth0/1\x02\x04\x0a\x58\x00\xfe")  # circuit id + remote id


def test_client_identifier_is_echoed_in_offer_ack_and_nak(full: Harness) -> None:
    _, offer = full.one(packet(MessageType.DISCOVER, CLIENT, CLIENT_ID))
    assert offer.get(Opt.CLIENT_ID) == CLIENT_ID[1]
    _, ack = full.one(packet(MessageType.REQUEST, CLIENT, CLIENT_ID, requested(offer.yiaddr), server_id()))
    assert ack.get(Opt.CLIENT_ID) == CLIENT_ID[1]
    _, nak = full.one(packet(MessageType.REQUEST, CLIENT, CLIENT_ID, requested(IPv4Address("10.9.9.9"))))
    assert nak.message_type is MessageType.NAK and nak.get(Opt.CLIENT_ID) == CLIENT_ID[1]


def test_client_identifier_is_the_identity(full: Harness) -> None:
    """RFC 2131 4.2: a client identifier, when sent, identifies the lease (not chaddr)."""
    bound = full.bind(CLIENT, CLIENT_ID)
    # same client id from another NIC: same lease; same NIC without the id: another client
    assert full.one(packet(MessageType.DISCOVER, OTHER, CLIENT_ID))[1].yiaddr == bound
    assert full.one(packet(MessageType.DISCOVER, CLIENT))[1].yiaddr != bound


def test_relay_agent_information_is_echoed(full: Harness) -> None:
    relay = {"giaddr": IPv4Address("10.88.0.253"), "hops": 1}
    _, offer = full.one(packet(MessageType.DISCOVER, CLIENT, RELAY_INFO, **relay))
    assert offer.get(Opt.RELAY_AGENT) == RELAY_INFO[1]
    _, ack = full.one(
        packet(MessageType.REQUEST, CLIENT, RELAY_INFO, requested(offer.yiaddr), server_id(), **relay)
    )
    assert ack.get(Opt.RELAY_AGENT) == RELAY_INFO[1]
    _, nak = full.one(
        packet(MessageType.REQUEST, CLIENT, RELAY_INFO, requested(IPv4Address("10.9.9.9")), **relay)
    )
    assert nak.get(Opt.RELAY_AGENT) == RELAY_INFO[1]


# -- where replies go (RFC 2131 4.1) -----------------------------------------------------------------------


def test_relayed_discover_is_answered_to_the_relay_with_the_configured_subnet(full: Harness) -> None:
    elsewhere = Ingress(
        ifindex=7,
        ifname="uplink",
        local_ip=SERVER,
        network=IPv4Network("192.168.7.0/24"),
        src=("10.88.0.253", 67),
        port=67,
    )
    request = packet(MessageType.DISCOVER, CLIENT, giaddr=IPv4Address("10.88.0.253"), hops=1)
    out, offer = full.one(request, ingress=elsewhere)
    assert out.dest == ("10.88.0.253", 67) and out.arp is None
    assert in_range(offer.yiaddr)
    assert offer.giaddr == IPv4Address("10.88.0.253")
    assert offer.get(Opt.SUBNET_MASK) == IPv4Address("255.255.255.0").packed
    assert offer.get(Opt.BROADCAST) == IPv4Address("10.88.0.255").packed


def test_relay_from_a_network_we_do_not_serve_is_silent(full: Harness) -> None:
    full.silent(packet(MessageType.DISCOVER, CLIENT, giaddr=IPv4Address("172.16.0.1"), hops=1))


def test_nak_through_a_relay_goes_to_the_relay_with_broadcast_bit(full: Harness) -> None:
    out, nak = full.one(
        packet(
            MessageType.REQUEST,
            CLIENT,
            requested(IPv4Address("10.9.9.9")),
            giaddr=IPv4Address("10.88.0.253"),
            hops=1,
        )
    )
    assert nak.message_type is MessageType.NAK
    assert out.dest == ("10.88.0.253", 67)
    assert nak.flags & BROADCAST_FLAG


def test_broadcast_flag_gets_a_broadcast_reply(full: Harness) -> None:
    out, offer = full.one(packet(MessageType.DISCOVER, CLIENT, flags=BROADCAST_FLAG))
    assert out.dest == ("255.255.255.255", 68) and out.arp is None
    assert offer.flags == BROADCAST_FLAG


def test_no_broadcast_flag_and_no_ciaddr_gets_unicast_with_arp(full: Harness) -> None:
    out, offer = full.one(packet(MessageType.DISCOVER))
    assert out.dest == (str(offer.yiaddr), 68)
    assert out.arp == (offer.yiaddr, CLIENT)


def test_other_ports(store: Store) -> None:
    """A server on port 1067 talks to clients on 1068 and relays on 1067 (tests run unprivileged)."""
    h = make(store, FULL_CONFIG, server_port=1067)
    ingress = Ingress(3, "nb0", SERVER, SUBNET, ("0.0.0.0", 1068), 1067)
    out, _ = h.one(packet(MessageType.DISCOVER, CLIENT, flags=BROADCAST_FLAG), ingress=ingress)
    assert out.dest == ("255.255.255.255", 1068)
    out, _ = h.one(packet(MessageType.DISCOVER, OTHER, giaddr=IPv4Address("10.88.0.253")), ingress=ingress)
    assert out.dest == ("10.88.0.253", 1067)


# -- boot clients in full mode ------------------------------------------------------------------------------


def test_pxe_client_gets_a_lease_and_its_boot_file(full: Harness) -> None:
    """OVMF PXE (93=7): address + siaddr + file + option 60 PXEClient + option 43, broadcast."""
    discover = fixture("uefi-pxe-0-discover.bin")
    out, offer = full.one(discover)
    assert offer.message_type is MessageType.OFFER and in_range(offer.yiaddr)
    assert u32(offer.get(Opt.LEASE_TIME)) == LEASE
    assert offer.siaddr == SERVER
    assert offer.file == b"ipxe.efi"
    assert offer.get(Opt.BOOTFILE) == b"ipxe.efi"  # asked for in its option 55
    assert offer.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert parse_encapsulated(offer.get(Opt.VENDOR_SPECIFIC) or b"") == {6: b"\x08"}  # use this boot file
    assert offer.get(Opt.UUID_GUID) == discover.get(Opt.UUID_GUID)
    assert Opt.IPXE_ENCAP not in offer
    assert out.dest == ("255.255.255.255", 68)  # OVMF sets the broadcast flag

    request = fixture("uefi-pxe-2-request.bin").with_options({Opt.REQUESTED_IP: offer.yiaddr.packed})
    out, ack = full.one(request)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert (ack.siaddr, ack.file, ack.get(Opt.VENDOR_CLASS)) == (SERVER, b"ipxe.efi", b"PXEClient")


def test_bios_ipxe_rom_gets_the_script_and_no_proxydhcp_wait(full: Harness) -> None:
    """iPXE: the HTTP script URL (never a loader again) and 175.176 = 1 (do not wait for ProxyDHCP)."""
    _, offer = full.one(fixture("bios-ipxe-0-discover.bin"))
    assert in_range(offer.yiaddr)
    assert offer.file == SCRIPT.encode() and offer.get(Opt.BOOTFILE) == SCRIPT.encode()
    assert offer.siaddr == SERVER
    assert offer.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert Opt.VENDOR_SPECIFIC not in offer
    assert offer.get(Opt.IPXE_ENCAP) == b"\xb0\x01\x01\xff"
    assert parse_encapsulated(offer.get(Opt.IPXE_ENCAP) or b"")[176] == b"\x01"

    request = fixture("bios-ipxe-2-request.bin").with_options({Opt.REQUESTED_IP: offer.yiaddr.packed})
    _, ack = full.one(request)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert ack.file == SCRIPT.encode()
    assert parse_encapsulated(ack.get(Opt.IPXE_ENCAP) or b"")[176] == b"\x01"


@pytest.mark.parametrize("name", ["uefi-ipxerom-0-discover.bin", "uefi-pxe-6-discover.bin"])
def test_uefi_ipxe_gets_the_script(full: Harness, name: str) -> None:
    _, offer = full.one(fixture(name))
    assert offer.file == SCRIPT.encode()
    assert parse_encapsulated(offer.get(Opt.IPXE_ENCAP) or b"")[176] == b"\x01"


def test_uefi_http_boot_gets_a_url_and_httpclient(full: Harness) -> None:
    _, offer = full.one(fixture("uefi-http-0-discover.bin"))
    url = f"http://{SERVER}:{HTTP_PORT}/loaders/ipxe.efi".encode()
    assert offer.get(Opt.VENDOR_CLASS) == b"HTTPClient"
    assert offer.get(Opt.BOOTFILE) == url and offer.file == url
    assert Opt.VENDOR_SPECIFIC not in offer


@pytest.mark.parametrize("name", ["bios-debian-4-discover.bin", "bios-debian-6-request.bin"])
def test_debian_installer_gets_a_plain_lease(full: Harness, name: str) -> None:
    request = fixture(name)
    if request.message_type is MessageType.REQUEST:  # its captured server id is dnsmasq's: make it ours
        offer = full.one(fixture("bios-debian-4-discover.bin"))[1]
        request = request.with_options({Opt.REQUESTED_IP: offer.yiaddr.packed})
    _, reply = full.one(request)
    assert reply.message_type in (MessageType.OFFER, MessageType.ACK) and in_range(reply.yiaddr)
    assert reply.siaddr == IPv4Address(0) and reply.file == b""
    for absent in (Opt.VENDOR_CLASS, Opt.VENDOR_SPECIFIC, Opt.BOOTFILE, Opt.IPXE_ENCAP):
        assert absent not in reply
    assert reply.get(Opt.CLIENT_ID) == request.get(Opt.CLIENT_ID)


def test_boot_client_without_a_loader_still_gets_a_lease(full: Harness) -> None:
    arm64 = packet(
        MessageType.DISCOVER,
        CLIENT,
        (Opt.CLIENT_ARCH, b"\x00\x0b"),
        (Opt.VENDOR_CLASS, b"PXEClient:Arch:00011:UNDI:003000"),
    )
    _, offer = full.one(arm64)
    assert in_range(offer.yiaddr) and offer.file == b"" and Opt.VENDOR_CLASS not in offer
    assert any("no boot loader" in summary for _, summary in full.events(CLIENT))


def test_firmware_and_the_ipxe_it_loads_keep_one_address(full: Harness) -> None:
    """OVMF PXE sends no option 61; the iPXE it loads sends 01:<mac>: one machine, one lease."""
    pxe_offer = full.one(fixture("uefi-pxe-0-discover.bin"))[1]
    full.one(fixture("uefi-pxe-2-request.bin").with_options({Opt.REQUESTED_IP: pxe_offer.yiaddr.packed}))
    ipxe_offer = full.one(fixture("uefi-pxe-6-discover.bin"))[1]
    assert ipxe_offer.yiaddr == pxe_offer.yiaddr


# ========================================================================================== proxy mode


def test_proxy_pxe_discover_gets_an_offer_without_an_address(proxy: Harness) -> None:
    out, offer = proxy.one(fixture("uefi-pxe-0-discover.bin"))
    assert offer.message_type is MessageType.OFFER
    assert (offer.yiaddr, offer.ciaddr) == (IPv4Address(0), IPv4Address(0))
    assert offer.siaddr == SERVER and offer.server_id == SERVER
    assert offer.file == b"ipxe.efi"
    assert offer.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert parse_encapsulated(offer.get(Opt.VENDOR_SPECIFIC) or b"") == {6: b"\x08"}
    for absent in (Opt.LEASE_TIME, Opt.RENEWAL_T1, Opt.REBINDING_T2, Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS):
        assert absent not in offer, "ProxyDHCP leaves addressing to the real DHCP server"
    assert out.dest == ("255.255.255.255", 68) and out.arp is None


def test_proxy_ipxe_gets_the_script(proxy: Harness) -> None:
    out, offer = proxy.one(fixture("bios-ipxe-0-discover.bin"))
    assert offer.yiaddr == IPv4Address(0)
    assert offer.file == SCRIPT.encode() and offer.get(Opt.BOOTFILE) == SCRIPT.encode()
    assert out.dest == ("255.255.255.255", 68)  # no address to unicast to


def test_proxy_uefi_http_boot(proxy: Harness) -> None:
    _, offer = proxy.one(fixture("uefi-http-0-discover.bin"))
    assert offer.yiaddr == IPv4Address(0)
    assert offer.get(Opt.VENDOR_CLASS) == b"HTTPClient"
    assert offer.get(Opt.BOOTFILE) == f"http://{SERVER}:{HTTP_PORT}/loaders/ipxe.efi".encode()


def _strip_pxe(name: str) -> DhcpPacket:
    return fixture(name).with_options({Opt.VENDOR_CLASS: None, Opt.CLIENT_ARCH: None})


PLAIN_CLIENTS = {
    "debian-installer-discover": fixture("bios-debian-4-discover.bin"),
    "debian-installer-request": fixture("bios-debian-6-request.bin"),
    "dhclient": _strip_pxe("client-dhclient-0-discover.bin"),
    "udhcpc": _strip_pxe("client-udhcpc-0-discover.bin"),
    "crafted": packet(MessageType.DISCOVER),
}


@pytest.mark.parametrize("name", sorted(PLAIN_CLIENTS))
def test_proxy_is_silent_for_ordinary_clients(proxy: Harness, name: str) -> None:
    proxy.silent(PLAIN_CLIENTS[name])
    proxy.silent(PLAIN_CLIENTS[name], ingress=PROXY_INGRESS)
    assert proxy.sink.events == [] and proxy.seen == []


PXE_OPTIONS = ((Opt.CLIENT_ARCH, b"\x00\x07"), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003000"))
NAKABLE = {
    "init-reboot wrong network": packet(
        MessageType.REQUEST, CLIENT, *PXE_OPTIONS, requested(IPv4Address("1.2.3.4"))
    ),
    "selecting our id, foreign address": packet(
        MessageType.REQUEST, CLIENT, *PXE_OPTIONS, requested(IPv4Address("1.2.3.4")), server_id()
    ),
    "renewing unknown address": packet(
        MessageType.REQUEST, CLIENT, *PXE_OPTIONS, ciaddr=IPv4Address("10.9.9.9")
    ),
    "rebinding": packet(
        MessageType.REQUEST, CLIENT, *PXE_OPTIONS, ciaddr=IPv4Address("10.9.9.9"), flags=BROADCAST_FLAG
    ),
    "decline": packet(
        MessageType.DECLINE, CLIENT, *PXE_OPTIONS, requested(IPv4Address("10.88.0.5")), server_id()
    ),
    "release": packet(
        MessageType.RELEASE, CLIENT, *PXE_OPTIONS, server_id(), ciaddr=IPv4Address("10.88.0.5")
    ),
    "inform": packet(MessageType.INFORM, CLIENT, *PXE_OPTIONS, ciaddr=IPv4Address("10.88.0.5")),
    "bios-ipxe request (dnsmasq's offer)": fixture("bios-ipxe-2-request.bin"),
    "ovmf request (dnsmasq's offer)": fixture("uefi-pxe-2-request.bin"),
    "relayed wrong network": packet(
        MessageType.REQUEST,
        CLIENT,
        *PXE_OPTIONS,
        requested(IPv4Address("1.2.3.4")),
        giaddr=IPv4Address("172.16.0.1"),
    ),
}


@pytest.mark.parametrize("name", sorted(NAKABLE))
def test_proxy_never_naks(proxy: Harness, store: Store, name: str) -> None:
    """What full mode would NAK (or answer), ProxyDHCP leaves to the real server: silence on port 67."""
    proxy.silent(NAKABLE[name])
    assert store.leases.all() == []


def test_full_mode_would_nak_those(full: Harness) -> None:
    """The proxy test above is only meaningful if full mode does NAK these."""
    for name in ("init-reboot wrong network", "selecting our id, foreign address"):
        assert full.one(NAKABLE[name])[1].message_type is MessageType.NAK, name


@pytest.mark.parametrize("src_port", [68, 4011])
def test_proxy_port_4011_request_is_acked_by_unicast(proxy: Harness, src_port: int) -> None:
    """PXE 2.1 boot server discovery: REQUEST to port 4011 from the client's address -> ACK back there."""
    client_ip = IPv4Address("10.88.0.135")
    request = fixture("uefi-pxe-2-request.bin").replace(ciaddr=client_ip)
    ingress = Ingress(3, "nb0", SERVER, SUBNET, (str(client_ip), src_port), 4011)
    out, ack = proxy.one(request, ingress=ingress)
    assert ack.message_type is MessageType.ACK
    assert out.dest == (str(client_ip), src_port) and out.arp is None
    assert ack.yiaddr == IPv4Address(0) and ack.ciaddr == client_ip
    assert (ack.siaddr, ack.file) == (SERVER, b"ipxe.efi")
    assert ack.server_id == SERVER
    assert ack.get(Opt.VENDOR_CLASS) == b"PXEClient" and Opt.VENDOR_SPECIFIC in ack
    assert Opt.LEASE_TIME not in ack


def test_port_4011_without_ciaddr_answers_the_source(proxy: Harness) -> None:
    request = fixture("uefi-pxe-2-request.bin")
    ingress = Ingress(3, "nb0", SERVER, SUBNET, ("10.88.0.136", 4011), 4011)
    out, _ = proxy.one(request, ingress=ingress)
    assert out.dest == ("10.88.0.136", 4011)


def test_full_mode_also_answers_port_4011(full: Harness) -> None:
    request = fixture("uefi-pxe-2-request.bin").replace(ciaddr=IPv4Address("10.88.0.135"))
    out, ack = full.one(request, ingress=PROXY_INGRESS)
    assert ack.message_type is MessageType.ACK and ack.file == b"ipxe.efi"
    assert ack.yiaddr == IPv4Address(0) and out.dest == ("10.88.0.135", 68)
    assert full.pool is not None and full.pool.leases() == []  # 4011 hands out boot files, not addresses


@pytest.mark.parametrize("mode", ["proxy", "full"])
def test_port_4011_discover_is_ignored(store: Store, mode: str) -> None:
    h = make(store, PROXY_CONFIG if mode == "proxy" else FULL_CONFIG)
    h.silent(fixture("uefi-pxe-0-discover.bin"), ingress=PROXY_INGRESS)


def test_proxy_without_a_loader_is_silent_but_recorded(proxy: Harness) -> None:
    arm64 = packet(
        MessageType.DISCOVER, CLIENT, (Opt.CLIENT_ARCH, b"\x00\x0b"), (Opt.VENDOR_CLASS, b"PXEClient")
    )
    proxy.silent(arm64)
    assert [e.detail.get("reason") for e in proxy.sink.events] == [
        "no boot loader configured or found for uefi-arm64"
    ]


# ============================================================================================== events

BOOT_FIXTURES = {
    "bios-ipxe-0-discover.bin": ("bios", SCRIPT),
    "uefi-pxe-0-discover.bin": ("uefi-x64", "ipxe.efi"),
    "uefi-pxe-6-discover.bin": ("uefi-x64", SCRIPT),
    "uefi-ipxerom-0-discover.bin": ("uefi-x64", SCRIPT),
    "uefi-http-0-discover.bin": ("uefi-x64", f"http://{SERVER}:{HTTP_PORT}/loaders/ipxe.efi"),
    "client-udhcpc-0-discover.bin": ("bios", "undionly.kpxe"),
    "client-dhclient-0-discover.bin": ("uefi-x64", "ipxe.efi"),
}


@pytest.mark.parametrize("mode", ["full", "proxy"])
@pytest.mark.parametrize("name", sorted(BOOT_FIXTURES))
def test_every_boot_decision_is_an_event_for_the_mac(store: Store, mode: str, name: str) -> None:
    h = make(store, FULL_CONFIG if mode == "full" else PROXY_CONFIG)
    arch, boot_file = BOOT_FIXTURES[name]
    _, offer = h.one(fixture(name))
    assert len(h.sink.events) == 1
    event = h.sink.events[0]
    assert (event.phase, event.mac, event.time) == ("dhcp", FIXTURE_MAC, NOW)
    assert event.detail["arch"] == arch
    assert event.detail["boot_file"] == boot_file
    assert event.detail["message"] == "OFFER" and event.detail["mode"] == mode
    assert boot_file in event.summary
    assert offer.file == boot_file.encode()
    if mode == "full":
        assert event.client_ip == str(offer.yiaddr) and event.detail["ip"] == str(offer.yiaddr)
    assert h.seen == [FIXTURE_MAC]  # staged by the boot core, written by the group commit


def test_plain_lease_ack_is_an_event(full: Harness) -> None:
    bound = full.bind()
    assert full.events(CLIENT) == [("dhcp", f"ACK {bound}")]
    assert full.seen == []


def test_recorder_learns_the_address_for_later_tftp_and_http_events(full: Harness) -> None:
    bound = full.bind()
    assert full.recorder.mac_for(str(bound)) == CLIENT


# ========================================================================================= robustness


def _garbage() -> dict[str, DhcpPacket]:
    discover = fixture("uefi-pxe-0-discover.bin")
    return {
        "bootreply": discover.replace(op=Op.BOOTREPLY),
        "no message type": discover.with_options({Opt.MESSAGE_TYPE: None}),
        "message type 99": discover.with_options({Opt.MESSAGE_TYPE: b"\x63"}),
        "message type two bytes": discover.with_options({Opt.MESSAGE_TYPE: b"\x01\x01"}),
        "offer from a client": discover.with_options({Opt.MESSAGE_TYPE: b"\x02"}),
        "token ring": discover.replace(htype=6),
        "hlen 16": discover.replace(hlen=16),
        "option 93 one byte": discover.with_options({Opt.CLIENT_ARCH: b"\x07"}),
        "option 93 empty": discover.with_options({Opt.CLIENT_ARCH: b""}),
        "option 97 short": discover.with_options({Opt.UUID_GUID: b"\x00\x01"}),
        "option 77 bad lengths": discover.with_options({Opt.USER_CLASS: b"\x09iPXE"}),
        "option 175 truncated": discover.with_options({Opt.IPXE_ENCAP: b"\xb1\x05\x01"}),
        "option 57 zero": discover.with_options({Opt.MAX_SIZE: b"\x00\x00"}),
        "option 57 one byte": discover.with_options({Opt.MAX_SIZE: b"\x05"}),
        "option 50 three bytes": packet(MessageType.REQUEST, CLIENT, (Opt.REQUESTED_IP, b"\x0a\x58\x00")),
        "option 54 two bytes": packet(
            MessageType.REQUEST, CLIENT, (Opt.SERVER_ID, b"\x0a\x58"), requested(FIRST)
        ),
        "request 0.0.0.0": packet(MessageType.REQUEST, CLIENT, requested(IPv4Address(0)), server_id()),
        "request broadcast": packet(MessageType.REQUEST, CLIENT, requested(IPv4Address("10.88.0.255"))),
        "decline 0.0.0.0": packet(MessageType.DECLINE, CLIENT, requested(IPv4Address(0))),
        "release 0.0.0.0": packet(MessageType.RELEASE, CLIENT),
        "long client id": packet(
            MessageType.DISCOVER, CLIENT, (Opt.CLIENT_ID, b"\xff" * 255), (Opt.MAX_SIZE, b"\x02\x40")
        ),
        "huge relay info": packet(
            MessageType.DISCOVER,
            CLIENT,
            (Opt.RELAY_AGENT, b"\x01\xff" + b"r" * 255 + b"\x02\x04abcd"),
            giaddr=IPv4Address("10.88.0.253"),
        ),
    }


@pytest.mark.parametrize("mode", ["full", "proxy"])
def test_killer_packets_then_the_server_still_answers(store: Store, mode: str) -> None:
    """Kea-style regression: odd packets get a well-formed reply or none, never an exception."""
    h = make(store, FULL_CONFIG if mode == "full" else PROXY_CONFIG)
    for name, bad in _garbage().items():
        for ingress in (INGRESS, PROXY_INGRESS):
            try:
                h.send(bad, ingress=ingress)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                pytest.fail(f"{name} on port {ingress.port}: {type(exc).__name__}: {exc}")
    _, offer = h.one(fixture("uefi-pxe-0-discover.bin"), now=NOW + 60)
    assert offer.message_type is MessageType.OFFER and offer.file == b"ipxe.efi"
    if mode == "full":
        assert in_range(offer.yiaddr)
        assert h.pool is not None and all(in_range(lease.ip) for lease in h.pool.leases())


def test_bad_packets_are_not_boot_clients_or_leases(full: Harness) -> None:
    garbage = _garbage()
    full.silent(garbage["bootreply"])
    full.silent(garbage["no message type"])
    full.silent(garbage["token ring"])
    assert full.seen == [] and full.pool is not None and full.pool.leases() == []


def test_a_reply_that_does_not_fit_576_bytes_is_still_sent(full: Harness) -> None:
    """RFC 6842 says echo option 61; a 255-byte one with an iPXE boot answer does not fit 576 bytes."""
    big = fixture("bios-ipxe-0-discover.bin").with_options({Opt.CLIENT_ID: b"\xff" * 255, Opt.MAX_SIZE: None})
    out = full.service.handle(big, INGRESS, NOW)
    assert len(out) == 1
    reply = decode(out[0].data)
    assert reply.get(Opt.CLIENT_ID) == b"\xff" * 255
    assert reply.get(Opt.BOOTFILE) == SCRIPT.encode()
    assert len(out[0].data) <= MAX_REPLY_SIZE - 28


def test_full_mode_needs_a_pool() -> None:
    with pytest.raises(ValueError, match="lease pool"):
        recorder = EventRecorder(MemorySink())
        DhcpService(FULL_CONFIG, booter=core_over(open_store("sqlite://"), recorder), recorder=recorder)


def test_classified_fixture_mac() -> None:
    """Sanity for the tables above: the captures are all from one NIC."""
    for name in BOOT_FIXTURES:
        request = classify(fixture(name))
        assert request is not None and request.mac == FIXTURE_MAC

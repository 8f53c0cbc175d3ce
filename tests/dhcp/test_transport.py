"""The DHCP transport (``netboot.servers.dhcp.DhcpServer``) on real sockets, in the test process.

Server and relay live in a private network namespace of the test's own threads (``tests/private_netns.py``):
nothing binds or sends in this machine's namespace, and the transport runs in-process, where mutation
testing sees it. The clients speak as a DHCP relay does (giaddr set, replies unicast to the relay's port
67), the way perfdhcp and real relays reach a server, so no broadcast is involved. The transport's
contract: a reply goes out only after the batch's leases are durable; a failed flush withholds it; a
malformed datagram is dropped, counted and logged and the next one is served; datagrams from interfaces
not served are ignored; ``shutdown`` ends the loop.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from netlab import wait_for
from private_netns import PrivateNetns, private_netns

from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode, encode
from netboot.servers.dhcp import IFACE_TTL, IP_PKTINFO, DhcpServer
from netboot.servers.netif import InterfaceInfo
from netboot.store import Store

from .test_service import FULL_CONFIG, Harness, make, packet, requested

RELAY = IPv4Address("10.88.0.253")  # in FULL_CONFIG's subnet, so the service serves what it relays
CLIENT = MacAddress.parse("52:54:00:10:00:41")
OTHER = MacAddress.parse("52:54:00:10:00:42")


@pytest.fixture
def ns() -> Iterator[PrivateNetns]:
    with private_netns() as made:
        # the relay's address on a veth pair (this kernel has no dummy links); both ends stay inside
        made.ip("link", "add", "nb0", "type", "veth", "peer", "name", "nb1")
        made.ip("addr", "add", f"{RELAY}/24", "dev", "nb0")
        made.ip("link", "set", "nb0", "up")
        made.ip("link", "set", "nb1", "up")
        yield made


@pytest.fixture
def full(store: Store) -> Harness:
    return make(store, FULL_CONFIG)


class Running:
    """A DhcpServer serving in its own thread inside ``ns``, and a relay socket to talk to it."""

    def __init__(
        self, ns: PrivateNetns, harness: Harness, flush: Callable[[], object], **kwargs: object
    ) -> None:
        self.server = ns.call(
            lambda: DhcpServer(
                harness.service,
                port=67,
                proxy_port=4011,
                flush=flush,
                tick=0.05,
                **kwargs,  # type: ignore[arg-type]
            )
        )
        self.relay = ns.call(self._relay_socket)
        self.thread = ns.thread(self.server.serve_forever, "dhcp-serve")

    @staticmethod
    def _relay_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the server's 0.0.0.0:67
        sock.bind((str(RELAY), 67))
        sock.settimeout(10)
        return sock

    def send(self, data: bytes) -> None:
        self.relay.sendto(data, ("127.0.0.1", 67))

    def reply(self) -> DhcpPacket:
        data, (_host, port) = self.relay.recvfrom(4096)
        assert port == 67
        return decode(data)

    def stop(self) -> None:
        """Stop the loop and wait for it: every datagram it took is then handled and answered or not."""
        self.server.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive(), "serve_forever did not return after shutdown"

    def pending_replies(self) -> list[DhcpPacket]:
        self.relay.setblocking(False)
        found = []
        while True:
            try:
                found.append(decode(self.relay.recv(4096)))
            except BlockingIOError:
                self.relay.settimeout(10)
                return found

    def close(self) -> None:
        if self.thread.is_alive():
            self.stop()
        self.server.close()
        self.relay.close()


@pytest.fixture
def running(ns: PrivateNetns, full: Harness) -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def start(flush: Callable[[], object] | None = None, **kwargs: object) -> Running:
        made.append(Running(ns, full, flush or full.store.flush_for_replies, **kwargs))
        return made[-1]

    yield start
    for each in made:
        each.close()


def relayed(kind: MessageType, mac: MacAddress, *options: tuple[int, bytes]) -> bytes:
    return encode(packet(kind, mac, *options, giaddr=RELAY, hops=1))


def request_for(offer: DhcpPacket, mac: MacAddress) -> bytes:
    """REQUEST (selecting) for what ``offer`` offered, naming its server."""
    return relayed(
        MessageType.REQUEST, mac, requested(offer.yiaddr), (Opt.SERVER_ID, offer.get(Opt.SERVER_ID) or b"")
    )


def lease_end(db: Path, ip: IPv4Address) -> float:
    with sqlite3.connect(db) as conn:
        (expires,) = conn.execute("SELECT expires FROM leases WHERE ip=?", (str(ip),)).fetchone()
        return float(expires)


def leases_on_disk(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT ip, mac FROM leases WHERE state='active'"))


def test_a_relayed_dora_is_answered_and_the_ack_follows_its_durable_lease(
    running: Callable[..., Running], full: Harness, db: Path
) -> None:
    on_disk_at_flush: list[list[tuple[str, str]]] = []

    def flush() -> object:
        written = full.store.flush_for_replies()
        on_disk_at_flush.append(leases_on_disk(db))
        return written

    served = running(flush)
    served.send(relayed(MessageType.DISCOVER, CLIENT))
    offer = served.reply()
    assert offer.message_type is MessageType.OFFER and offer.giaddr == RELAY
    served.send(request_for(offer, CLIENT))
    ack = served.reply()
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    # the ACK's lease was on disk by the time its batch was flushed, i.e. before the ACK was sent
    assert (str(ack.yiaddr), CLIENT.packed.hex()) in on_disk_at_flush[-1]
    assert served.server.packets == 2 and served.server.dropped == 0


def test_a_failed_flush_withholds_the_ack_and_the_server_goes_on(
    running: Callable[..., Running], full: Harness, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = threading.Event()

    def flush() -> object:
        if broken.is_set() and full.store.leases.pending():
            raise OSError(28, "No space left on device")
        return full.store.flush_for_replies()

    served = running(flush)
    served.send(relayed(MessageType.DISCOVER, CLIENT))
    offer = served.reply()
    broken.set()
    with caplog.at_level(logging.ERROR, logger="netboot.dhcp"):
        served.send(request_for(offer, CLIENT))
        wait_for(lambda: "withholding 1 replies" in caplog.text, 10, what="the failed flush")
    assert served.pending_replies() == [], "no ACK may go out when its lease could not be stored"
    assert leases_on_disk(db) == []
    broken.clear()  # the disk is back; the client retransmits and the kept lease is written and ACKed
    served.send(request_for(offer, CLIENT))
    ack = served.reply()
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert leases_on_disk(db) == [(str(ack.yiaddr), CLIENT.packed.hex())]


def test_a_malformed_datagram_is_dropped_counted_logged_and_the_next_is_served(
    running: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    served = running()
    with caplog.at_level(logging.WARNING, logger="netboot.dhcp"):
        served.send(b"\x01\x01\x06\x00 not a DHCP message")
        served.send(relayed(MessageType.DISCOVER, CLIENT))
        offer = served.reply()
    assert offer.message_type is MessageType.OFFER
    assert (served.server.packets, served.server.dropped) == (2, 1)
    assert "dropped malformed DHCP datagram from 10.88.0.253:67 (23 bytes)" in caplog.text


def test_datagrams_from_an_interface_not_served_are_ignored(
    ns: PrivateNetns, running: Callable[..., Running], full: Harness
) -> None:
    served = running(interfaces=["nb0"])  # this traffic comes in on lo
    served.send(relayed(MessageType.DISCOVER, CLIENT))
    wait_for(lambda: served.server.packets == 1, 10, what="the datagram to arrive")
    served.stop()
    assert served.pending_replies() == []
    assert served.server.dropped == 0 and full.events() == []


def test_the_pxe_port_is_served_too_and_shutdown_ends_the_loop(running: Callable[..., Running]) -> None:
    served = running()
    assert sorted(served.server.ports) == [67, 4011]
    served.relay.sendto(relayed(MessageType.DISCOVER, CLIENT), ("127.0.0.1", 4011))
    wait_for(lambda: served.server.packets == 1, 10, what="the datagram on 4011")
    served.stop()
    served.server.close()
    assert all(sock.fileno() == -1 for sock in served.server._sockets)


def test_a_release_which_has_no_reply_is_still_made_durable(
    running: Callable[..., Running], full: Harness, db: Path
) -> None:
    """A batch without replies (RELEASE, DECLINE) still flushes: the release is on disk at once."""
    served = running()
    served.send(relayed(MessageType.DISCOVER, CLIENT))
    offer = served.reply()
    served.send(request_for(offer, CLIENT))
    ack = served.reply()
    assert leases_on_disk(db) == [(str(ack.yiaddr), CLIENT.packed.hex())]
    release = packet(
        MessageType.RELEASE, CLIENT, (Opt.SERVER_ID, offer.get(Opt.SERVER_ID) or b""), ciaddr=ack.yiaddr
    )
    served.relay.sendto(encode(release), ("127.0.0.1", 67))
    # a released lease stays, expired, for affinity: its end is moved to the release
    wait_for(lambda: lease_end(db, ack.yiaddr) < time.time() + 60, 10, what="the release on disk")


def test_every_malformed_datagram_and_every_failing_one_is_counted(
    running: Callable[..., Running], full: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Two malformed datagrams count two; a packet the service fails on is dropped with its MAC logged."""
    real = full.service.handle

    def handle(packet: DhcpPacket, ingress: object, now: float) -> object:
        if packet.mac == OTHER:
            raise RuntimeError("a bug in the service")
        return real(packet, ingress, now)  # type: ignore[arg-type]

    full.service.handle = handle  # type: ignore[method-assign]
    served = running()
    with caplog.at_level(logging.WARNING, logger="netboot.dhcp"):
        served.send(b"\x00" * 10)
        served.send(b"\x00" * 20)
        served.send(relayed(MessageType.DISCOVER, OTHER))
        served.send(relayed(MessageType.DISCOVER, CLIENT))
        offer = served.reply()
    assert offer.chaddr[:6] == CLIENT.packed
    assert (served.server.packets, served.server.dropped) == (4, 3)
    assert f"error handling DHCP packet from {OTHER}" in caplog.text


def test_an_interface_without_an_address_answers_from_the_bound_address(
    ns: PrivateNetns, running: Callable[..., Running]
) -> None:
    """With no IPv4 address on the ingress interface, the server id is the address the socket is bound to."""
    served = running(bind_ip="127.0.0.1")
    served.server._ifaces[1] = (1e18, InterfaceInfo(1, "lo", None, None))  # lo, as if it had no address
    served.send(relayed(MessageType.DISCOVER, CLIENT))
    offer = served.reply()
    assert offer.get(Opt.SERVER_ID) == IPv4Address("127.0.0.1").packed


def test_the_sightings_are_settled_while_idle(running: Callable[..., Running]) -> None:
    """``settle`` runs every tick even when no datagram comes, so staged sightings are written in time."""
    settled = threading.Semaphore(0)
    running(settle=settled.release)
    for _ in range(3):
        assert settled.acquire(timeout=10), "settle was not called while idle"


def test_the_ingress_interface_is_read_from_ip_pktinfo() -> None:
    """Only an IP_PKTINFO control message of full size names the interface; anything else is 0 (unknown)."""
    pktinfo = struct.pack("=i4s4s", 7, b"\0" * 4, b"\0" * 4)
    assert DhcpServer._ifindex([(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)]) == 7
    assert DhcpServer._ifindex([(socket.IPPROTO_IP, IP_PKTINFO, pktinfo + b"\0")]) == 7
    assert DhcpServer._ifindex([(socket.IPPROTO_IP, IP_PKTINFO, pktinfo[:-1])]) == 0
    assert DhcpServer._ifindex([(socket.SOL_SOCKET, IP_PKTINFO, pktinfo)]) == 0
    assert DhcpServer._ifindex([(socket.IPPROTO_IP, IP_PKTINFO + 1, pktinfo)]) == 0
    assert DhcpServer._ifindex([]) == 0


def test_interfaces_are_looked_up_once_per_ttl(ns: PrivateNetns, running: Callable[..., Running]) -> None:
    served = running()
    server = served.server
    first = ns.call(lambda: server._interface(1))
    assert first.name == "lo" and first.address == IPv4Address("127.0.0.1")
    assert ns.call(lambda: server._interface(1)) is first  # cached
    stamp, info = server._ifaces[1]
    server._ifaces[1] = (stamp - IFACE_TTL - 1, info)  # expired: looked up again
    assert ns.call(lambda: server._interface(1)) is not first
    server._ifaces[1] = (time.monotonic() - IFACE_TTL + 5, first)  # not yet expired
    assert ns.call(lambda: server._interface(1)) is first
    assert ns.call(lambda: server._interface(9999)) == InterfaceInfo(9999, "?", None, None)

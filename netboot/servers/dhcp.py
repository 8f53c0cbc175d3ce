"""The DHCP transport: the only DHCP code that touches sockets.

One thread, blocking ``recvmsg`` on the DHCP port (67) and the PXE port (4011), IP_PKTINFO to learn the
ingress interface, ``sendmsg`` with IP_PKTINFO to send a broadcast out of that same interface. Measured on
this class of machine, a blocking recvfrom/sendto loop turns around ~245 000 datagrams/s against ~40 000
for asyncio's DatagramProtocol, which is why this is not asyncio.

Group commit: after a packet arrives, the loop drains up to :data:`BATCH` more that are already queued,
handles them all, makes the batch's lease changes durable with one flush (``flush``), and only then sends
the replies. A ``kill -9`` at any point therefore loses no lease that a client was ACKed. Writes no reply
depends on (the "seen" sightings of booting clients) are left to ``settle``, called after the replies are
sent and at least every ``tick`` seconds, so an OFFER or a ProxyDHCP answer never waits for the store.

Every datagram is handled inside ``try``: a malformed one is logged (rate-limited) and dropped; an
unexpected error is logged with the client's MAC; the loop never dies from a packet.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

from netboot.dhcp.service import DhcpService, Ingress, Outgoing
from netboot.logutil import RateLimited
from netboot.protocol.dhcp import decode
from netboot.protocol.errors import DecodeError
from netboot.servers.netif import InterfaceInfo, interface_by_index, set_arp

log = logging.getLogger("netboot.dhcp")

IP_PKTINFO = 8  # from <linux/in.h>; Python's socket module does not export it
_PKTINFO = struct.Struct("=i4s4s")
_CMSG_SPACE = socket.CMSG_SPACE(_PKTINFO.size)
BATCH = 64
MAX_DATAGRAM = 4096
#: seconds an interface's address/subnet is cached before it is looked up again
IFACE_TTL = 30.0


def open_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((address, port))
    return sock


def flush_then_send(
    flush: Callable[[], object],
    batch: list[tuple[socket.socket, Outgoing]],
    send: Callable[[socket.socket, Outgoing], None],
) -> bool:
    """Make the batch's leases durable, then send its replies; send nothing if that fails.

    The order is the durability guarantee (an ACK is never out before its lease is on disk), and a
    failed flush withholds every reply: the clients retransmit and are answered once the store is back.
    Returns whether the replies went out.
    """
    try:
        flush()
    except Exception:
        log.exception("could not store leases: withholding %d replies", len(batch))
        return False
    for sock, out in batch:
        send(sock, out)
    return True


class DhcpServer:
    """Serves :class:`DhcpService` on the DHCP port and, optionally, the PXE proxy port (4011)."""

    def __init__(
        self,
        service: DhcpService,
        *,
        bind_ip: str = "0.0.0.0",
        port: int = 67,
        proxy_port: int | None = 4011,
        interfaces: Iterable[str] = (),
        flush: Callable[[], object] = lambda: None,
        settle: Callable[[], object] = lambda: None,
        tick: float = 0.25,
    ) -> None:
        self.service = service
        self._flush = flush
        self._settle = settle
        self._tick = tick
        self._allowed = {socket.if_nametoindex(name) for name in interfaces}
        self._sockets: dict[socket.socket, int] = {}
        main = open_socket(bind_ip, port)
        self._sockets[main] = main.getsockname()[1]
        if proxy_port is not None:
            extra = open_socket(bind_ip, proxy_port)
            self._sockets[extra] = extra.getsockname()[1]
        self._main = main
        self._ifaces: dict[int, tuple[float, InterfaceInfo]] = {}
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._bad = RateLimited(log)
        self.packets = 0
        self.dropped = 0

    @property
    def ports(self) -> list[int]:
        return list(self._sockets.values())

    def shutdown(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")

    def close(self) -> None:
        for sock in [*self._sockets, self._wake_r, self._wake_w]:
            sock.close()

    # ---------------------------------------------------------------------------------------------- loop

    def serve_forever(self) -> None:
        readers = [*self._sockets, self._wake_r]
        while not self._stop.is_set():
            ready, _, _ = select.select(readers, [], [], self._tick)
            batch: list[tuple[socket.socket, Outgoing]] = []
            for sock in ready:
                if sock is self._wake_r:
                    continue
                for _ in range(BATCH):
                    try:
                        data, ancdata, _flags, src = sock.recvmsg(
                            MAX_DATAGRAM, _CMSG_SPACE, socket.MSG_DONTWAIT
                        )
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        log.warning("receive failed: %s", exc)
                        break
                    replies = self._handle(data, ancdata, src, self._sockets[sock])
                    batch.extend((sock, out) for out in replies)
            if batch or ready:
                flush_then_send(self._flush, batch, self._send)
            self._after_replies()

    def _after_replies(self) -> None:
        """The writes no reply waits for (sightings), once they are due: after the batch is sent."""
        try:
            self._settle()
        except Exception:
            log.exception("could not store the staged sightings (kept for the next try)")

    def _handle(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], src: tuple[str, int], port: int
    ) -> list[Outgoing]:
        self.packets += 1
        ifindex = self._ifindex(ancdata)
        if self._allowed and ifindex not in self._allowed:
            return []
        try:
            packet = decode(data)
        except DecodeError as exc:
            self.dropped += 1
            self._bad.warning(
                "dropped malformed DHCP datagram from %s:%d (%d bytes): %s", src[0], src[1], len(data), exc
            )
            return []
        try:
            info = self._interface(ifindex)
            local = info.address or IPv4Address(self._main.getsockname()[0])
            ingress = Ingress(
                ifindex=ifindex, ifname=info.name, local_ip=local, network=info.network, src=src, port=port
            )
            return self.service.handle(packet, ingress, time.time())
        except Exception:
            self.dropped += 1
            log.exception("error handling DHCP packet from %s (%s:%d); packet dropped", packet.mac, *src)
            return []

    @staticmethod
    def _ifindex(ancdata: list[tuple[int, int, bytes]]) -> int:
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= _PKTINFO.size:
                return int(_PKTINFO.unpack_from(value)[0])
        return 0

    def _interface(self, ifindex: int) -> InterfaceInfo:
        now = time.monotonic()
        cached = self._ifaces.get(ifindex)
        if cached is not None and now - cached[0] < IFACE_TTL:
            return cached[1]
        try:
            info = interface_by_index(ifindex)
        except OSError:
            info = InterfaceInfo(ifindex, "?", None, None)
        self._ifaces[ifindex] = (now, info)
        return info

    def _send(self, sock: socket.socket, out: Outgoing) -> None:
        """Send from the socket the request came in on, so 4011 answers come from port 4011."""
        try:
            if out.arp is not None:
                try:
                    set_arp(sock, self._interface(out.ifindex).name, *out.arp)
                except OSError:
                    # no ARP entry, no unicast: RFC 2131 4.1 allows broadcasting instead
                    out = Outgoing(out.data, ("255.255.255.255", out.dest[1]), out.ifindex)
            cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(out.ifindex, b"\0" * 4, b"\0" * 4))]
            sock.sendmsg([out.data], cmsg if out.ifindex else [], 0, out.dest)
        except OSError as exc:
            log.warning("could not send DHCP reply to %s:%d: %s", out.dest[0], out.dest[1], exc)

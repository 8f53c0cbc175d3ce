"""The DHCP rules of full and proxy mode: one request packet in, the replies to send out.

No sockets here: the transport (:mod:`netboot.servers.dhcp`) tells us where a packet came in
(:class:`Ingress`), and we return :class:`Outgoing` datagrams with their destination chosen as RFC 2131
section 4.1 says. Leases changed while handling a batch are staged in the store; the transport flushes
them before sending (so an ACK never announces a lease that a crash could lose). What a boot client is
told to load is the boot core's answer (:class:`Booter`); this module only places it in the reply.

Full mode owns the addresses (DISCOVER/OFFER/REQUEST/ACK/NAK/DECLINE/RELEASE/INFORM). Proxy mode never
assigns an address and never NAKs: it answers boot clients on port 67 (OFFER) and 4011 (ACK), and stays
silent for everyone else.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol

from netboot.boot.classify import BootRequest, classify
from netboot.boot.decide import BootDecision, DhcpAnswer, LocalBoot, NoBoot
from netboot.boot.reply import boot_fields, boot_options
from netboot.config import DhcpConfig
from netboot.dhcp.leases import ClientKey, LeasePool
from netboot.events import Event, EventRecorder
from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Op, Opt, encode

log = logging.getLogger("netboot.dhcp")

ZERO = IPv4Address(0)
BROADCAST = IPv4Address("255.255.255.255")
CLIENT_PORT = 68


@dataclass(frozen=True, slots=True)
class Ingress:
    """Where a request arrived: learned by the transport from IP_PKTINFO."""

    ifindex: int
    ifname: str
    #: our address on that interface (what clients reach us at)
    local_ip: IPv4Address
    #: the interface's subnet, for full mode when no subnet is configured
    network: IPv4Network | None
    src: tuple[str, int]
    #: the local port: the DHCP port (67) or the PXE proxy port (4011)
    port: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    data: bytes
    dest: tuple[str, int]
    ifindex: int
    #: (ip, mac) to put in the ARP table first, for a unicast to a client that has no address yet
    arp: tuple[IPv4Address, MacAddress] | None = None


class Booter(Protocol):
    """The boot core as DHCP sees it (:class:`netboot.boot.core.BootCore`)."""

    def dhcp(
        self, request: BootRequest, local_ip: IPv4Address, *, now: float, discover: bool
    ) -> DhcpAnswer | None:
        """What this client boots; None when it is not a boot client. Must not wait on the store."""
        ...

    def server_ip(self, local_ip: IPv4Address) -> IPv4Address:
        """The address clients on the interface with ``local_ip`` are told to use."""
        ...


#: Ethernet MTU: the largest reply we send, whatever a client's option 57 claims (OVMF claims 65280)
MAX_REPLY_SIZE = 1500


def encode_reply(reply: DhcpPacket, request: DhcpPacket) -> bytes:
    """Encode within the client's stated maximum (at least RFC 2131's 576, at most the Ethernet MTU).

    A reply that cannot fit 576 bytes (e.g. echoing a 255-byte client identifier, RFC 6842) is sent at
    up to the MTU rather than not at all: every client we have seen accepts that.
    """
    limit = min(max(576, request.max_message_size or 576), MAX_REPLY_SIZE)
    try:
        return encode(reply, max_size=limit)
    except ValueError:
        return encode(reply, max_size=MAX_REPLY_SIZE)


class DhcpService:
    """Handles one decoded request at a time; owned by the single DHCP thread."""

    def __init__(
        self,
        config: DhcpConfig,
        *,
        booter: Booter,
        recorder: EventRecorder,
        pool: LeasePool | None = None,
        server_port: int | None = None,
    ) -> None:
        if config.mode == "full" and pool is None:
            raise ValueError("full DHCP mode needs a lease pool")
        self.config = config
        self.pool = pool
        self._booter = booter
        self._recorder = recorder
        self._server_port = server_port if server_port is not None else config.port
        self._client_port = CLIENT_PORT if self._server_port == 67 else self._server_port + 1
        self._reservation_names = {r.mac: r.hostname for r in config.reservations}

    # ---------------------------------------------------------------------------------------- dispatch

    def handle(self, packet: DhcpPacket, ingress: Ingress, now: float) -> list[Outgoing]:
        if packet.op != Op.BOOTREQUEST:
            return []
        msg = packet.message_type
        request = classify(packet)
        if msg is None or request is None:
            return []
        if self.config.mode == "proxy":
            return self._proxy(packet, msg, request, ingress, now)
        if ingress.port != self._server_port:
            return self._proxy(packet, msg, request, ingress, now)  # full mode also answers 4011
        return self._full(packet, msg, request, ingress, now)

    # ---------------------------------------------------------------------------------------- proxy mode

    def _proxy(
        self, packet: DhcpPacket, msg: MessageType, request: BootRequest, ingress: Ingress, now: float
    ) -> list[Outgoing]:
        on_4011 = ingress.port != self._server_port
        if on_4011:
            if msg not in (MessageType.REQUEST, MessageType.INFORM):
                return []
            reply_type = MessageType.ACK
        else:
            if msg is not MessageType.DISCOVER:
                if msg is MessageType.REQUEST and packet.requested_ip is not None:
                    self._recorder.learn(str(packet.requested_ip), request.mac)
                return []
            reply_type = MessageType.OFFER
        decision = self._decision(request, ingress, now, msg, reply_type)
        if not isinstance(decision, BootDecision):
            return []
        siaddr, file = boot_fields(decision)
        server_id = decision.next_server if self.config.mode == "proxy" else ingress.local_ip
        options: list[tuple[int, bytes]] = [
            (Opt.MESSAGE_TYPE, bytes([reply_type])),
            (Opt.SERVER_ID, server_id.packed),
        ]
        options += boot_options(decision, request, packet, proxy=True)
        reply = self._reply_header(packet, yiaddr=ZERO, siaddr=siaddr, file=file, options=options)
        if on_4011:
            # PXE 2.1: the client asked from its own address; answer it there, on the port it used
            dest = (str(packet.ciaddr) if packet.ciaddr != ZERO else ingress.src[0], ingress.src[1])
            if packet.ciaddr != ZERO:
                self._recorder.learn(str(packet.ciaddr), request.mac)
            return [Outgoing(encode_reply(reply, packet), dest, ingress.ifindex)]
        return [self._route(reply, packet, ingress)]

    # ----------------------------------------------------------------------------------------- full mode

    def _full(
        self, packet: DhcpPacket, msg: MessageType, request: BootRequest, ingress: Ingress, now: float
    ) -> list[Outgoing]:
        assert self.pool is not None
        network = self._network(packet, ingress)
        if network is None:
            log.debug(
                "%s: %s from a network we do not serve (giaddr %s)", request.mac, msg.name, packet.giaddr
            )
            return []
        key = ClientKey(request.mac, packet.client_id)
        if msg is MessageType.DISCOVER:
            return self._discover(packet, request, key, ingress, network, now)
        if msg is MessageType.REQUEST:
            return self._request(packet, request, key, ingress, network, now)
        if msg is MessageType.DECLINE:
            ours = packet.server_id in (None, ingress.local_ip)
            if ours and packet.requested_ip is not None and self.pool.decline(packet.requested_ip, key, now):
                log.warning(
                    "%s declined %s (in use by another host?): quarantined",
                    request.mac,
                    packet.requested_ip,
                )
            return []
        if msg is MessageType.RELEASE:
            if self.pool.release(packet.ciaddr, key, now):
                self._event(
                    request,
                    "dhcp",
                    f"RELEASE {packet.ciaddr}",
                    str(packet.ciaddr),
                    now,
                    {"message": "RELEASE"},
                )
            return []
        if msg is MessageType.INFORM:
            return self._inform(packet, request, ingress, network, now)
        return []

    def _discover(
        self,
        packet: DhcpPacket,
        request: BootRequest,
        key: ClientKey,
        ingress: Ingress,
        network: IPv4Network,
        now: float,
    ) -> list[Outgoing]:
        assert self.pool is not None
        ip = self.pool.choose(key, packet.requested_ip, now)
        if ip is None:
            log.warning(
                "%s: no free address in %s-%s: no OFFER", request.mac, self.pool.first, self.pool.last
            )
            return []
        self.pool.hold_offer(ip, key, now)
        reply = self._lease_reply(packet, request, ingress, network, MessageType.OFFER, ip, now)
        return [self._route(reply, packet, ingress)]

    def _request(
        self,
        packet: DhcpPacket,
        request: BootRequest,
        key: ClientKey,
        ingress: Ingress,
        network: IPv4Network,
        now: float,
    ) -> list[Outgoing]:
        assert self.pool is not None
        server_id = packet.server_id
        if server_id is not None:  # SELECTING: the client answers an OFFER
            if server_id != ingress.local_ip and server_id != self._booter.server_ip(ingress.local_ip):
                return []  # it chose another server
            wanted = packet.requested_ip or packet.ciaddr
        elif packet.requested_ip is not None:  # INIT-REBOOT
            wanted = packet.requested_ip
            if wanted not in network:
                return [self._nak(packet, ingress, "requested address is on the wrong network")]
            if self.pool.lease_of(key, now) is None and not self.pool.allocatable(wanted, key, now):
                return [self._nak(packet, ingress, "address not available")]
        elif packet.ciaddr != ZERO:  # RENEWING (unicast) or REBINDING (broadcast)
            wanted = packet.ciaddr
        else:
            return []
        if wanted == ZERO or not self.pool.allocatable(wanted, key, now):
            if server_id is None and packet.ciaddr != ZERO and self.pool.lease_of(key, now) is None:
                return []  # rebinding to an address we have no record of: stay silent (RFC 2131 4.3.2)
            return [self._nak(packet, ingress, f"address {wanted} not available")]
        hostname = packet.hostname or self._reservation_names.get(request.mac)
        lease = self.pool.commit(wanted, key, hostname, now)
        self._recorder.learn(str(lease.ip), request.mac)
        reply = self._lease_reply(packet, request, ingress, network, MessageType.ACK, wanted, now)
        return [self._route(reply, packet, ingress)]

    def _inform(
        self, packet: DhcpPacket, request: BootRequest, ingress: Ingress, network: IPv4Network, now: float
    ) -> list[Outgoing]:
        options: list[tuple[int, bytes]] = [
            (Opt.MESSAGE_TYPE, bytes([MessageType.ACK])),
            (Opt.SERVER_ID, ingress.local_ip.packed),
        ]
        options += self._network_options(network)
        reply = self._reply_header(packet, yiaddr=ZERO, siaddr=ZERO, file=b"", options=options)
        dest = str(packet.ciaddr) if packet.ciaddr != ZERO else ingress.src[0]
        return [Outgoing(encode_reply(reply, packet), (dest, self._client_port), ingress.ifindex)]

    def _nak(self, packet: DhcpPacket, ingress: Ingress, why: str) -> Outgoing:
        log.info("%s: NAK (%s)", packet.mac, why)
        options: list[tuple[int, bytes]] = [
            (Opt.MESSAGE_TYPE, bytes([MessageType.NAK])),
            (Opt.SERVER_ID, ingress.local_ip.packed),
            (Opt.MESSAGE, why.encode()),
        ]
        reply = self._reply_header(packet, yiaddr=ZERO, siaddr=ZERO, file=b"", options=options)
        # RFC 2131 table 3: ciaddr is 0 in a NAK; through a relay the broadcast bit is set (4.1)
        flags = reply.flags | 0x8000 if packet.giaddr != ZERO else reply.flags
        reply = replace(reply, ciaddr=ZERO, flags=flags)
        data = encode_reply(reply, packet)
        if packet.giaddr != ZERO:
            return Outgoing(data, (str(packet.giaddr), self._server_port), ingress.ifindex)
        return Outgoing(data, (str(BROADCAST), self._client_port), ingress.ifindex)

    def _lease_reply(
        self,
        packet: DhcpPacket,
        request: BootRequest,
        ingress: Ingress,
        network: IPv4Network,
        kind: MessageType,
        ip: IPv4Address,
        now: float,
    ) -> DhcpPacket:
        lease_time = self.config.lease_time
        options: list[tuple[int, bytes]] = [
            (Opt.MESSAGE_TYPE, bytes([kind])),
            (Opt.SERVER_ID, ingress.local_ip.packed),
            (Opt.LEASE_TIME, struct.pack("!I", lease_time)),
            (Opt.RENEWAL_T1, struct.pack("!I", lease_time // 2)),
            (Opt.REBINDING_T2, struct.pack("!I", lease_time * 7 // 8)),
        ]
        options += self._network_options(network)
        name = self._reservation_names.get(request.mac)
        if name:
            options.append((Opt.HOSTNAME, name.encode()))
        siaddr, file = ZERO, b""
        decision = self._decision(request, ingress, now, packet.message_type, kind, ip)
        if isinstance(decision, BootDecision):
            siaddr, file = boot_fields(decision)
            options += boot_options(decision, request, packet, proxy=False)
        elif decision is None and kind is MessageType.ACK:  # a boot client's ACK is recorded with its answer
            self._event(request, "dhcp", f"ACK {ip}", str(ip), now, {"message": "ACK", "ip": str(ip)})
        return self._reply_header(packet, yiaddr=ip, siaddr=siaddr, file=file, options=options)

    def _network_options(self, network: IPv4Network) -> list[tuple[int, bytes]]:
        c = self.config
        opts: list[tuple[int, bytes]] = [
            (Opt.SUBNET_MASK, network.netmask.packed),
            (Opt.BROADCAST, network.broadcast_address.packed),
        ]
        if c.router is not None:
            opts.append((Opt.ROUTER, c.router.packed))
        if c.dns_servers:
            opts.append((Opt.DNS, b"".join(ip.packed for ip in c.dns_servers)))
        if c.domain:
            opts.append((Opt.DOMAIN_NAME, c.domain.encode()))
        return opts

    def _network(self, packet: DhcpPacket, ingress: Ingress) -> IPv4Network | None:
        """The subnet this client is on: the relay's (giaddr) or the ingress interface's."""
        configured = self.config.subnet
        if packet.giaddr != ZERO:
            return configured if configured is not None and packet.giaddr in configured else None
        if configured is not None:
            return configured
        return ingress.network

    # -------------------------------------------------------------------------------------------- shared

    def _decision(
        self,
        request: BootRequest,
        ingress: Ingress,
        now: float,
        msg: MessageType | None,
        kind: MessageType,
        ip: IPv4Address | None = None,
    ) -> DhcpAnswer | None:
        decision = self._booter.dhcp(
            request, ingress.local_ip, now=now, discover=msg is MessageType.DISCOVER
        )
        if decision is None:
            return None
        where = f" to {ip}" if ip is not None else ""
        if isinstance(decision, NoBoot | LocalBoot):
            if isinstance(decision, NoBoot):
                log.warning("%s (%s): not booting: %s", request.mac, request.kind, decision.reason)
                summary = f"no boot answer: {decision.reason}"
            else:
                log.info(
                    "%s (%s) %s: no boot file (%s)", request.mac, request.kind, kind.name, decision.reason
                )
                summary = f"{kind.name}{where} without a boot file: {decision.reason}"
            self._event(
                request,
                "dhcp",
                summary,
                str(ip) if ip else None,
                now,
                {"message": kind.name, "kind": request.kind, "reason": decision.reason,
                 "boot_file": None, "mode": self.config.mode},
            )
            return decision
        log.info(
            "%s (%s) %s on port %d: %s %s%s via %s",
            request.mac,
            request.kind,
            msg.name if msg else "?",
            ingress.port,
            kind.name,
            decision.boot_file,
            where,
            decision.via,
        )
        self._event(
            request,
            "dhcp",
            f"{kind.name} {decision.boot_file}{where}",
            str(ip) if ip else None,
            now,
            {
                "message": kind.name,
                "kind": request.kind,
                "arch": request.arch.value,
                "arch_code": request.arch_code,
                "boot_file": decision.boot_file,
                "via": decision.via,
                "ip": str(ip) if ip else None,
                "mode": self.config.mode,
                "port": ingress.port,
                "interface": ingress.ifname,
            },
        )
        return decision

    def _event(
        self,
        request: BootRequest,
        phase: str,
        summary: str,
        ip: str | None,
        now: float,
        detail: dict[str, object],
    ) -> None:
        self._recorder.record(
            Event(phase=phase, summary=summary, mac=request.mac, client_ip=ip, time=now, detail=detail)
        )

    def _reply_header(
        self,
        packet: DhcpPacket,
        *,
        yiaddr: IPv4Address,
        siaddr: IPv4Address,
        file: bytes,
        options: list[tuple[int, bytes]],
    ) -> DhcpPacket:
        echo = [(code, packet.get(code)) for code in (Opt.CLIENT_ID, Opt.RELAY_AGENT)]
        options = options + [(code, value) for code, value in echo if value is not None]
        return DhcpPacket(
            op=Op.BOOTREPLY,
            htype=packet.htype,
            hlen=packet.hlen,
            hops=0,
            xid=packet.xid,
            secs=0,
            flags=packet.flags,
            ciaddr=packet.ciaddr,
            yiaddr=yiaddr,
            siaddr=siaddr,
            giaddr=packet.giaddr,
            chaddr=packet.chaddr,
            sname=b"",
            file=file,
            options=tuple(options),
        )

    def _route(self, reply: DhcpPacket, request: DhcpPacket, ingress: Ingress) -> Outgoing:
        """RFC 2131 4.1: relay, then ciaddr unicast, then broadcast flag, then unicast to yiaddr."""
        data = encode_reply(reply, request)
        if request.giaddr != ZERO:
            return Outgoing(data, (str(request.giaddr), self._server_port), ingress.ifindex)
        if request.ciaddr != ZERO:
            return Outgoing(data, (str(request.ciaddr), self._client_port), ingress.ifindex)
        if request.broadcast or reply.yiaddr == ZERO or request.mac is None:
            return Outgoing(data, (str(BROADCAST), self._client_port), ingress.ifindex)
        return Outgoing(
            data, (str(reply.yiaddr), self._client_port), ingress.ifindex, arp=(reply.yiaddr, request.mac)
        )

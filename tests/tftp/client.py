"""A raw TFTP client for tests: byte-exact requests, a windowed (RFC 7440) receiver, many clients at once.

Real clients (tftp-hpa, atftp, curl, tftpy) prove interoperability; this one lets a test send exactly the
bytes firmware sends (the captured OVMF requests) and look at every reply.
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from dataclasses import dataclass, field

from netboot.protocol.tftp import Ack, Data, Error, OptionAck, Packet, ReadRequest, decode, encode

Address = tuple[str, int]


class RawClient:
    """One UDP socket on 127.0.0.1; every reply is decoded with the codec under test."""

    def __init__(self, server: Address, *, timeout: float = 3.0) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | Packet, to: Address | None = None) -> None:
        raw = data if isinstance(data, bytes) else encode(data)
        self.sock.sendto(raw, to or self.server)

    def recv(self) -> tuple[Packet, Address]:
        data, addr = self.sock.recvfrom(70000)
        return decode(data), addr

    def recv_none(self, wait: float = 0.3) -> bool:
        """True when nothing arrives within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            self.sock.recvfrom(70000)
        except TimeoutError:
            return True
        return False

    def download(self, name: str, options: dict[str, str] | None = None, *, raw_request: bytes | None = None,
                 ) -> tuple[bytes, dict[str, str], Address]:
        """RRQ, then receive like RFC 7440 firmware: ACK every ``windowsize`` blocks and the last one."""
        self.send(raw_request or ReadRequest(name, "octet", tuple((options or {}).items())))
        packet, tid = self.recv()
        blksize, windowsize, accepted = 512, 1, {}
        if isinstance(packet, OptionAck):
            accepted = dict(packet.options)
            blksize = int(accepted.get("blksize", 512))
            windowsize = int(accepted.get("windowsize", 1))
            self.send(Ack(0), tid)
            packet, _ = self._recv_from(tid)
        chunks: list[bytes] = []
        expected = 1
        while True:
            if isinstance(packet, Error):
                raise RuntimeError(f"server error {packet.code}: {packet.message}")
            assert isinstance(packet, Data), packet
            if packet.block == expected & 0xFFFF:
                chunks.append(packet.payload)
                last = len(packet.payload) < blksize
                if last or expected % windowsize == 0:
                    self.send(Ack(packet.block), tid)
                if last:
                    return b"".join(chunks), accepted, tid
                expected += 1
            packet, _ = self._recv_from(tid)

    def _recv_from(self, tid: Address) -> tuple[Packet, Address]:
        while True:
            packet, addr = self.recv()
            if addr == tid:
                return packet, addr


@dataclass
class _Leg:
    sock: socket.socket
    name: str
    tid: Address | None = None
    expected: int = 1
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    error: str | None = None


def storm_address() -> str:
    """A loopback address of its own for one boot storm: 127.x.y.z, never 127.0.0.x.

    A TFTP client learns the server's TID from the first reply, so it cannot tell that reply from a
    stray one by anything but the address. Every other client in the suite (and in a mutmut run or a
    parallel suite on this host) binds 127.0.0.1, and their servers keep retransmitting to ports that
    closed: one of hundreds of storm sockets on a reused 127.0.0.1 port once adopted another process's
    f.bin transfer. On an address of its own no such retransmission can reach it.
    """
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def download_many(server: Address, names: list[str], *, deadline: float = 30.0) -> list[bytes | str]:
    """Lock-step downloads for all ``names`` at once from one thread (a boot storm); bytes or an error.

    Like a real client, each leg takes only a reply from the server's host as its TID and then drops
    what comes from any other address (RFC 1350 section 4), so a stray datagram cannot pass for data.
    """
    selector = selectors.DefaultSelector()
    legs = []
    local = storm_address()
    for name in names:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((local, 0))
        sock.setblocking(False)
        leg = _Leg(sock, name)
        selector.register(sock, selectors.EVENT_READ, leg)
        legs.append(leg)
    try:
        for leg in legs:
            leg.sock.sendto(encode(ReadRequest(leg.name)), server)
        end = time.monotonic() + deadline
        pending = len(legs)
        while pending and time.monotonic() < end:
            for key, _ in selector.select(1.0):
                pending -= _step(key.data, server[0])
        return [b"".join(leg.chunks) if leg.done and not leg.error else (leg.error or "unfinished")
                for leg in legs]
    finally:
        selector.close()
        for leg in legs:
            leg.sock.close()


def _step(leg: _Leg, host: str) -> int:
    """Handle one datagram for ``leg``; 1 when that finished it."""
    data, addr = leg.sock.recvfrom(70000)
    if addr != (leg.tid or (host, addr[1])):
        return 0  # not from this transfer's peer: not this leg's business
    packet = decode(data)
    leg.tid = addr
    if leg.done:
        # the server resent a block after the leg ended (its timer beat our last ACK): ACK it again as a
        # real client does, but the leg was counted once already; counting it again ended the storm early
        if isinstance(packet, Data):
            leg.sock.sendto(encode(Ack(packet.block)), leg.tid)
        return 0
    if isinstance(packet, Error):
        leg.error, leg.done = f"error {packet.code}: {packet.message}", True
        return 1
    assert isinstance(packet, Data)
    if packet.block == leg.expected & 0xFFFF:
        leg.chunks.append(packet.payload)
        leg.expected += 1
    leg.sock.sendto(encode(Ack(packet.block)), leg.tid)
    if len(packet.payload) < 512 and packet.block == (leg.expected - 1) & 0xFFFF:
        leg.done = True
        return 1
    return 0

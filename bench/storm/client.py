"""The boot storm's machines: many simulated UEFI PXE clients in one process, each walking the whole chain.

Run by ``bench/storm/storm.py`` in the client namespace, several processes at once, all starting at the
same instant (``--start``, a wall-clock time). Each machine does what a UEFI x64 PXE ROM and then iPXE do,
as the captures in tests/fixtures/dhcp show it:

1. DHCP DISCOVER (broadcast flag, vendor class ``PXEClient:Arch:00007``, option 93 = 7, a UUID), OFFER,
   REQUEST, ACK; retransmitted after 4, 8 and 16 s as the PXE specification has it, and started over
   after a NAK (counted per machine).
2. TFTP of the boot file the ACK names from its next-server, asking ``blksize 1468 windowsize 4 tsize 0``
   (a server that does not take ``windowsize`` answers block by block, and the client follows it).
3. As iPXE, over one keep-alive HTTP connection from the address it was leased: the boot script
   (``/boot.ipxe?mac=``), the kernel and the initrd it names, the answer file in the kernel's ``url=``, and
   ``/done/<mac>?token=``.

Every socket a machine opens is bound to the address it was leased (the namespace holds the whole pool),
so the server sees each machine at its own address, as it would on a real install network. What a machine
fetched is checked (status 200, the whole Content-Length); any failure is recorded for that machine, not
retried. One JSON line per machine goes to stdout: the time each phase ended (seconds since ``--start``)
and its errors; a last line gives this process's CPU seconds, so a saturated generator is seen.

This is a load generator, not part of netboot: the DHCP and TFTP bytes are built here, with nothing of
netboot's codecs, so both servers are driven by the same independent client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
VENDOR_CLASS = b"PXEClient:Arch:00007:UNDI:003016"
#: the PXE specification's DHCP retransmission timeouts, seconds
DHCP_TIMEOUTS = (4.0, 8.0, 16.0)
#: DISCOVERs a machine starts over with after a NAK before it gives up
DHCP_RESTARTS = 10
TFTP_TIMEOUT = 1.0
TFTP_RETRIES = 6
HTTP_TIMEOUT = 60.0
CHUNK = 1 << 20


@dataclass
class Machine:
    """One simulated machine's timeline: seconds since the storm's start at the end of each phase."""

    mac: str
    ip: str | None = None
    dhcp: float | None = None
    tftp: float | None = None
    script: float | None = None
    kernel: float | None = None
    initrd: float | None = None
    answer: float | None = None
    done: float | None = None
    bytes: int = 0
    naks: int = 0
    errors: list[str] = field(default_factory=list)


class Failed(Exception):
    pass


# ------------------------------------------------------------------------------------------------ DHCP


@dataclass
class Reply:
    """What a client needs of a server's DHCP reply."""

    xid: bytes
    yiaddr: bytes
    siaddr: bytes
    file: bytes
    options: dict[int, bytes]

    @property
    def kind(self) -> int:
        return self.options.get(53, b"\0")[0]

    @property
    def boot_file(self) -> str:
        return (self.options.get(67) or self.file).rstrip(b"\0").decode()


def dhcp_request(kind: int, mac: bytes, xid: bytes, uuid: bytes, offer: Reply | None = None) -> bytes:
    header = struct.pack("!BBBB4sHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4),
                         bytes(4), bytes(4), mac + bytes(10), b"", b"")
    opts = [(53, bytes([kind])), (57, struct.pack("!H", 1500)), (93, b"\x00\x07"), (94, b"\x01\x03\x10"),
            (97, b"\x00" + uuid), (60, VENDOR_CLASS),
            (55, bytes([1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58,
                        59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135]))]
    if offer is not None:
        opts += [(50, offer.yiaddr), (54, offer.options.get(54, offer.siaddr))]
    body = b"".join(bytes([code, len(value)]) + value for code, value in opts)
    return header + MAGIC + body + b"\xff"


def dhcp_reply(data: bytes) -> Reply | None:
    """The reply in ``data``; None for anything that is not a well-formed BOOTREPLY."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            return None
        code, length = data[i], data[i + 1]
        options.setdefault(code, data[i + 2:i + 2 + length])
        i += 2 + length
    return Reply(data[4:8], data[16:20], data[20:24], data[108:236].split(b"\0", 1)[0], options)


class DhcpPort(asyncio.DatagramProtocol):
    """The process's one socket on port 68: replies come broadcast, so each process sees them all and
    hands each to the machine waiting for that transaction ID and message type."""

    def __init__(self) -> None:
        self.waiting: dict[tuple[bytes, int], asyncio.Future[Reply]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = dhcp_reply(data)
        if reply is None:
            return
        waiter = self.waiting.pop((reply.xid, OFFER if reply.kind == OFFER else ACK), None)  # NAK too
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def exchange(self, packet: bytes, xid: bytes, expect: int) -> Reply:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        for timeout in DHCP_TIMEOUTS:
            future: asyncio.Future[Reply] = loop.create_future()
            self.waiting[(xid, expect)] = future
            self.transport.sendto(packet, ("255.255.255.255", 67))
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                continue
            finally:
                self.waiting.pop((xid, expect), None)
        raise Failed(f"DHCP: no {'OFFER' if expect == OFFER else 'ACK'} after {len(DHCP_TIMEOUTS)} tries")


def open_dhcp_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", 68))
    sock.setblocking(False)
    return sock


# ------------------------------------------------------------------------------------------------ TFTP


class TftpGet(asyncio.DatagramProtocol):
    """One TFTP read with options, acknowledging every ``windowsize`` blocks; a watchdog retransmits."""

    def __init__(self, server: str, name: str, done: asyncio.Future[int]) -> None:
        self.server = server
        self.rrq = (b"\0\1" + name.encode() + b"\0octet\0blksize\0" + b"1468\0windowsize\0" + b"4\0tsize\0"
                    + b"0\0")
        self.done = done
        self.peer: tuple[str, int] | None = None
        self.blksize = 512
        self.window = 1
        self.expected = 1  # the next block wanted (counting past 65535)
        self.size = 0
        self.last: tuple[bytes, tuple[str, int]] = (self.rrq, (server, 69))
        self.progress = time.monotonic()
        self.retries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._send(*self.last)
        asyncio.get_running_loop().call_later(TFTP_TIMEOUT, self._watch)

    def _send(self, data: bytes, dest: tuple[str, int]) -> None:
        assert self.transport is not None
        self.last = (data, dest)
        self.transport.sendto(data, dest)

    def _ack(self, block: int) -> None:
        assert self.peer is not None
        self._send(struct.pack("!HH", 4, block & 0xFFFF), self.peer)

    def _watch(self) -> None:
        if self.done.done():
            return
        if time.monotonic() - self.progress >= TFTP_TIMEOUT:
            self.retries += 1
            if self.retries > TFTP_RETRIES:
                self.done.set_exception(Failed(f"TFTP: no progress after {TFTP_RETRIES} retransmissions"))
                return
            self._send(*self.last)
        asyncio.get_running_loop().call_later(TFTP_TIMEOUT / 2, self._watch)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done() or len(data) < 4:
            return
        if self.peer is None:
            self.peer = addr
        elif addr != self.peer:
            return
        opcode = data[1]
        if opcode == 5:
            message = data[4:-1].decode(errors="replace")
            self.done.set_exception(Failed(f"TFTP error {data[2:4].hex()}: {message}"))
        elif opcode == 6 and self.expected == 1:
            fields = data[2:].split(b"\0")
            options = {fields[i].lower(): fields[i + 1] for i in range(0, len(fields) - 1, 2)}
            self.blksize = int(options.get(b"blksize", b"512"))
            self.window = int(options.get(b"windowsize", b"1"))
            self.progress, self.retries = time.monotonic(), 0
            self._ack(0)
        elif opcode == 3:
            block = struct.unpack_from("!H", data, 2)[0]
            if block != self.expected & 0xFFFF:
                if self.window > 1:
                    self._ack(self.expected - 1)  # a gap: ask for the window again from the last good one
                return
            self.size += len(data) - 4
            final = len(data) - 4 < self.blksize
            self.progress, self.retries = time.monotonic(), 0
            if final or self.expected % self.window == 0:
                self._ack(self.expected)
            self.expected += 1
            if final:
                self.done.set_result(self.size)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(Failed(f"TFTP: {exc}"))


async def tftp_get(local_ip: str, server: str, name: str) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: TftpGet(server, name, done),
                                                       local_addr=(local_ip, 0))
    try:
        return await done
    finally:
        transport.close()


# ------------------------------------------------------------------------------------------------ HTTP


class Http:
    """A keep-alive HTTP/1.1 connection from the machine's own address (reopened when the server closes)."""

    def __init__(self, local_ip: str, server: str, port: int, discard: bytearray) -> None:
        self.local_ip, self.server, self.port = local_ip, server, port
        self.sock: socket.socket | None = None
        self.discard = discard

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((self.local_ip, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (self.server, self.port)), HTTP_TIMEOUT)
        return sock

    async def get(self, target: str, keep: bool) -> tuple[int, bytes, int]:
        """(status, body if ``keep`` else b"", body length)."""
        try:
            return await asyncio.wait_for(self._get(target, keep), HTTP_TIMEOUT)
        except TimeoutError:
            self.close()
            raise Failed(f"HTTP GET {target}: no complete answer in {HTTP_TIMEOUT:.0f} s") from None

    async def _get(self, target: str, keep: bool) -> tuple[int, bytes, int]:
        loop = asyncio.get_running_loop()
        if self.sock is None:
            self.sock = await self._connect()
        sock = self.sock
        await loop.sock_sendall(sock, f"GET {target} HTTP/1.1\r\nHost: {self.server}:{self.port}\r\n"
                                      "User-Agent: iPXE/1.21.1\r\nConnection: keep-alive\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            piece = await loop.sock_recv(sock, 65536)
            if not piece:
                self.close()
                raise Failed(f"HTTP GET {target}: connection closed before the headers")
            head += piece
        headers, rest = head.split(b"\r\n\r\n", 1)
        lines = headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "content-length" not in fields:
            self.close()
            raise Failed(f"HTTP GET {target}: {status} without Content-Length")
        length = int(fields["content-length"])
        body = bytearray(rest) if keep else bytearray()
        got = len(rest)
        view = memoryview(self.discard)
        while got < length:
            if keep:
                piece = await loop.sock_recv(sock, min(CHUNK, length - got))
                body += piece
                n = len(piece)
            else:
                n = await loop.sock_recv_into(sock, view[: min(CHUNK, length - got)])
            if n == 0:
                self.close()
                raise Failed(f"HTTP GET {target}: closed after {got} of {length} bytes")
            got += n
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, bytes(body), length

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def boot(machine: Machine, index: int, dhcp: DhcpPort, start: float, discard: bytearray,
               save: Path | None) -> None:
    mac = bytes.fromhex(machine.mac.replace(":", ""))
    xid = os.urandom(4)
    uuid = index.to_bytes(16, "big")

    def now() -> float:
        return time.time() - start

    for attempt in range(1, DHCP_RESTARTS + 1):
        offer = await dhcp.exchange(dhcp_request(DISCOVER, mac, xid, uuid), xid, OFFER)
        ack = await dhcp.exchange(dhcp_request(REQUEST, mac, xid, uuid, offer), xid, ACK)
        if ack.kind == ACK:
            break
        # a NAK (the address went to another client meanwhile): start over, as RFC 2131 has it
        machine.naks = attempt
        xid = os.urandom(4)
    else:
        raise Failed(f"DHCP: NAK to {DHCP_RESTARTS} REQUESTs in a row")
    machine.ip = socket.inet_ntoa(ack.yiaddr)
    machine.dhcp = now()
    boot_file = ack.boot_file
    next_server = socket.inet_ntoa(ack.siaddr)
    if not boot_file:
        raise Failed("DHCP: no boot file in the ACK")
    machine.bytes += await tftp_get(machine.ip, next_server, boot_file)
    machine.tftp = now()

    http = Http(machine.ip, next_server, 8080, discard)
    try:
        script_path = f"/boot.ipxe?mac={machine.mac}"
        status, script, _ = await http.get(script_path, keep=True)
        if status != 200:
            raise Failed(f"boot script: HTTP {status}")
        machine.script = now()
        text = script.decode()
        kernel = re.search(r"(?m)^kernel (\S+)", text)
        initrd = re.search(r"(?m)^initrd (?:--name \S+ )?(\S+)", text)
        answer = re.search(r"url=(http://\S+)", text)
        if not (kernel and initrd and answer):
            raise Failed(f"boot script names no kernel, initrd and answer file: {text[:200]!r}")
        for phase, url in (("kernel", kernel.group(1)), ("initrd", initrd.group(1))):
            status, _, length = await http.get(path_of(url), keep=False)
            if status != 200:
                raise Failed(f"{phase}: HTTP {status}")
            machine.bytes += length
            setattr(machine, phase, now())
        answer_path = path_of(answer.group(1))
        status, body, _ = await http.get(answer_path, keep=True)
        if status != 200 or not body:
            raise Failed(f"answer file: HTTP {status}, {len(body)} bytes")
        machine.answer = now()
        token = re.search(r"token=([^&\s]+)", answer_path)
        done = f"/done/{machine.mac}" + (f"?token={token.group(1)}" if token else "")
        status, _, _ = await http.get(done, keep=False)
        if status != 200:
            raise Failed(f"/done: HTTP {status}")
        machine.done = now()
        if save is not None:
            (save / "boot" / f"{machine.mac}.ipxe").write_bytes(script)
            target = save / answer_path.split("?", 1)[0].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    finally:
        http.close()


async def storm(macs: list[str], first_index: int, start: float, interface: str, save: Path | None) -> None:
    loop = asyncio.get_running_loop()
    dhcp = DhcpPort()
    await loop.create_datagram_endpoint(lambda: dhcp, sock=open_dhcp_socket(interface))
    discard = bytearray(CHUNK)
    machines = [Machine(mac) for mac in macs]

    async def one(i: int, machine: Machine) -> None:
        try:
            await boot(machine, first_index + i, dhcp, start, discard, save)
        except Failed as exc:
            machine.errors.append(str(exc))
        except OSError as exc:
            machine.errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(one(i, m) for i, m in enumerate(machines)))
    for machine in machines:
        print(json.dumps(asdict(machine)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--macs", required=True, help="comma-separated MACs this process boots")
    ap.add_argument("--first-index", type=int, default=0, help="the first machine's number (its UUID)")
    ap.add_argument("--start", type=float, required=True, help="wall-clock time (epoch) to start at")
    ap.add_argument("--interface", default="eth0")
    ap.add_argument("--save", type=Path, help="save each boot script and answer file here (for nginx)")
    args = ap.parse_args()
    if args.save is not None:
        (args.save / "boot").mkdir(parents=True, exist_ok=True)
    asyncio.run(storm(args.macs.split(","), args.first_index, args.start, args.interface, args.save))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A scriptable DHCP client for tests: sends real firmware packets (fixtures) or crafted ones, prints replies.

Run it only inside a test namespace: ``ip netns exec NS python dhcp_probe.py ...``. It checks
``ip netns identify`` first and refuses to send from the machine's own namespace.

Output: one JSON object per reply received (source, message type, yiaddr, siaddr, file, options).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netboot.mac import MacAddress
from netboot.protocol.dhcp import DhcpPacket, MessageType, Opt, decode, encode
from netboot.protocol.errors import DecodeError


def require_namespace() -> str:
    name = subprocess.run(
        ["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True
    ).stdout
    if not name.strip():
        sys.exit("dhcp_probe: refusing to send DHCP from the host's own network namespace")
    return name.strip()


def open_client(iface: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", port))
    return sock


def collect(sock: socket.socket, xid: int, wait: float) -> list[tuple[DhcpPacket, tuple[str, int]]]:
    out = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, src = sock.recvfrom(4096)
        except TimeoutError:
            break
        try:
            packet = decode(data)
        except DecodeError:
            continue
        if packet.xid == xid and packet.op == 2:
            out.append((packet, src))
    return out


def describe(packet: DhcpPacket, src: tuple[str, int]) -> dict[str, object]:
    mt = packet.message_type
    return {
        "src": src[0],
        "sport": src[1],
        "type": mt.name if mt else None,
        "yiaddr": str(packet.yiaddr),
        "siaddr": str(packet.siaddr),
        "file": packet.file.decode(errors="replace"),
        "server_id": str(packet.server_id) if packet.server_id else None,
        "broadcast": packet.broadcast,
        "options": {str(code): value.hex() for code, value in packet.options},
        "vendor_class": packet.vendor_class,
    }


def base_packet(args: argparse.Namespace, mac: MacAddress) -> DhcpPacket:
    if args.fixture:
        packet = decode(Path(args.fixture).read_bytes())
        chaddr = mac.packed + bytes(10)
        return replace(packet, xid=int.from_bytes(os.urandom(4), "big"), chaddr=chaddr)
    options: list[tuple[int, bytes]] = [(Opt.MESSAGE_TYPE, bytes([MessageType.DISCOVER]))]
    if args.vendor_class:
        options.append((Opt.VENDOR_CLASS, args.vendor_class.encode()))
    if args.arch is not None:
        options.append((Opt.CLIENT_ARCH, args.arch.to_bytes(2, "big")))
    if args.user_class:
        options.append((Opt.USER_CLASS, args.user_class.encode()))
    if args.client_id:
        options.append((Opt.CLIENT_ID, bytes.fromhex(args.client_id)))
    options.append((Opt.PARAM_REQUEST, bytes([1, 3, 6, 15, 43, 60, 66, 67])))
    return DhcpPacket(
        xid=int.from_bytes(os.urandom(4), "big"),
        flags=0x8000,
        chaddr=mac.packed + bytes(10),
        options=tuple(options),
    )


def with_type(packet: DhcpPacket, msg: MessageType, extra: dict[int, bytes | None]) -> DhcpPacket:
    return packet.with_options({Opt.MESSAGE_TYPE: bytes([msg]), **extra})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--mac", required=True)
    parser.add_argument("--mode", choices=["discover", "dora", "garbage", "proxy-4011"], default="discover")
    parser.add_argument("--fixture")
    parser.add_argument("--vendor-class")
    parser.add_argument("--user-class")
    parser.add_argument("--arch", type=int)
    parser.add_argument("--client-id")
    parser.add_argument("--server", default="255.255.255.255")
    parser.add_argument("--server-port", type=int, default=67)
    parser.add_argument("--client-port", type=int, default=68)
    parser.add_argument("--wait", type=float, default=2.0)
    parser.add_argument("--ack-wait", type=float, help="seconds to wait for the answer to REQUEST (--wait)")
    parser.add_argument("--count", type=int, default=20, help="garbage datagrams to send (bounded)")
    args = parser.parse_args()
    require_namespace()
    mac = MacAddress.parse(args.mac)
    sock = open_client(args.iface, args.client_port)
    dest = (args.server, args.server_port)

    if args.mode == "garbage":
        samples = [
            b"",
            b"\x01",
            os.urandom(100),
            b"\x01" * 300,
            os.urandom(1500),
            bytes(236) + b"\x63\x82\x53\x63" + bytes([61, 255]) + b"x" * 10,
        ]
        for i in range(min(args.count, 1000)):
            sock.sendto(samples[i % len(samples)], dest)
        return

    packet = base_packet(args, mac)
    if args.mode == "proxy-4011":
        packet = with_type(packet, MessageType.REQUEST, {})
        sock.sendto(encode(packet), dest)
        for reply, src in collect(sock, packet.xid, args.wait):
            print(json.dumps(describe(reply, src)), flush=True)
        return
    packet = with_type(packet, MessageType.DISCOVER, {})
    sock.sendto(encode(packet), dest)
    replies = collect(sock, packet.xid, args.wait)
    for reply, src in replies:
        print(json.dumps(describe(reply, src)), flush=True)
    if args.mode != "dora":
        return
    offers = [r for r, _ in replies if r.message_type is MessageType.OFFER and r.yiaddr != IPv4Address(0)]
    if not offers:
        sys.exit("no OFFER with an address")
    offer = offers[0]
    request = with_type(
        packet,
        MessageType.REQUEST,
        {Opt.REQUESTED_IP: offer.yiaddr.packed, Opt.SERVER_ID: offer.get(Opt.SERVER_ID)},
    )
    sock.sendto(encode(request), dest)
    for reply, src in collect(sock, request.xid, args.ack_wait or args.wait):
        print(json.dumps(describe(reply, src)), flush=True)


if __name__ == "__main__":
    main()

"""Benchmark, not a test: the DHCP codec alone (no sockets), on the real firmware packets in tests/fixtures.

Usage: .venv/bin/python bench/dhcp/codec.py [--rounds 200000] [--repeat 7]
Prints the best of ``--repeat`` runs per operation in microseconds: decode of each captured client packet,
the typed accessors a reply reads, and encode of a typical OFFER (and one that needs overload, RFC 3396).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from netboot.protocol.dhcp import DhcpPacket, MessageType, Op, Opt, decode, encode, pack_ips, pack_u32

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "dhcp"
SERVER = IPv4Address("10.88.0.1")


def offer_for(request: DhcpPacket) -> DhcpPacket:
    """The OFFER a full-mode server sends an iPXE client: the options the service writes."""
    return DhcpPacket(
        op=Op.BOOTREPLY, xid=request.xid, flags=request.flags, chaddr=request.chaddr,
        yiaddr=IPv4Address("10.88.0.135"), siaddr=SERVER, file=b"http://10.88.0.1/boot.ipxe",
        options=(
            (Opt.MESSAGE_TYPE, bytes((MessageType.OFFER,))), (Opt.SERVER_ID, SERVER.packed),
            (Opt.LEASE_TIME, pack_u32(3600)), (Opt.SUBNET_MASK, pack_ips(IPv4Address("255.255.255.0"))),
            (Opt.ROUTER, SERVER.packed), (Opt.DNS, pack_ips(SERVER, IPv4Address("10.88.0.2"))),
            (Opt.VENDOR_CLASS, b"PXEClient"),
        ),
    )  # fmt: skip


def accessors(packet: DhcpPacket) -> object:
    return (packet.message_type, packet.mac, packet.vendor_class, packet.param_request_list,
            packet.max_message_size, packet.requested_ip, packet.client_id, Opt.USER_CLASS in packet)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    def best(statement: Callable[[], object]) -> float:
        return min(timeit.repeat(statement, number=args.rounds, repeat=args.repeat)) / args.rounds * 1e6

    samples = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*discover.bin"))}
    request = decode(next(iter(samples.values())))
    offer = offer_for(request)
    big = offer.replace(file=b"").with_options(
        {Opt.VENDOR_SPECIFIC: bytes(100), Opt.DOMAIN_SEARCH: bytes(100), Opt.CLASSLESS_ROUTES: bytes(100)}
    )
    for name, data in samples.items():
        print(f"decode {name:<40} {best(lambda data=data: decode(data)):6.2f} us")
    print(f"{'accessors (8 reads)':<47} {best(lambda: accessors(request)):6.2f} us")
    print(f"{'build OFFER (DhcpPacket(...))':<47} {best(lambda: offer_for(request)):6.2f} us")
    print(f"{'encode OFFER':<47} {best(lambda: encode(offer, max_size=1472)):6.2f} us")
    print(f"{'encode with overload (576-byte client)':<47} {best(lambda: encode(big, max_size=576)):6.2f} us")


if __name__ == "__main__":
    main()

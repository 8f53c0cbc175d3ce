"""The DNS resolver for registered hosts, over real UDP and TCP on loopback (dnslib's client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from netboot.dns import HostResolver
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.servers.dns import DnsServer
from netboot.store import Store, open_store
from netboot.store.leases import Lease


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.systems.add(
        System(
            mac=MacAddress.parse("52:54:00:00:00:01"),
            profile="local",
            state=SystemState.INSTALL,
            hostname="web1",
            ip=IPv4Address("10.0.0.21"),
        )
    )
    s.systems.add(
        System(
            mac=MacAddress.parse("52:54:00:00:00:02"),
            profile="local",
            state=SystemState.INSTALL,
            hostname="db1",
        )
    )
    s.leases.stage(
        IPv4Address("10.0.0.150"),
        Lease(
            IPv4Address("10.0.0.150"),
            MacAddress.parse("52:54:00:00:00:02"),
            None,
            None,
            time.time(),
            time.time() + 3600,
        ),
    )
    s.leases.flush()
    yield s
    s.close()


@pytest.fixture
def server(store: Store) -> Iterator[int]:
    dns = DnsServer(HostResolver(store, "lab.test", subnet=IPv4Network("10.0.0.0/24")), "127.0.0.1", 0)
    thread = threading.Thread(target=dns.serve_forever, daemon=True)
    thread.start()
    yield dns.port
    dns.shutdown()
    dns.close()


def ask(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=5))


def test_a_record_from_reservation_and_from_lease(server: int) -> None:
    web = ask(server, "web1.lab.test")
    assert web.header.rcode == RCODE.NOERROR and web.header.aa == 1
    assert [str(rr.rdata) for rr in web.rr] == ["10.0.0.21"]
    db = ask(server, "DB1.lab.test", tcp=True)  # case-insensitive, and over TCP
    assert [str(rr.rdata) for rr in db.rr] == ["10.0.0.150"]


def test_ptr_for_registered_addresses(server: int) -> None:
    reply = ask(server, "21.0.0.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web1.lab.test."]
    leased = ask(server, "150.0.0.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in leased.rr] == ["db1.lab.test."]


def test_unknown_names_in_zone_are_nxdomain(server: int) -> None:
    assert ask(server, "nobody.lab.test").header.rcode == RCODE.NXDOMAIN
    assert ask(server, "99.0.0.10.in-addr.arpa", "PTR").header.rcode == RCODE.NXDOMAIN


def test_nodata_for_other_types_of_known_names(server: int) -> None:
    reply = ask(server, "web1.lab.test", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert any(rr.rtype == QTYPE.SOA for rr in reply.auth)


def test_other_names_are_refused(server: int) -> None:
    assert ask(server, "example.com").header.rcode == RCODE.REFUSED
    assert ask(server, "1.1.168.192.in-addr.arpa", "PTR").header.rcode == RCODE.REFUSED
    assert ask(server, "lab.test.evil.com").header.rcode == RCODE.REFUSED


def test_malformed_query_does_not_stop_the_server(server: int) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x00" * 3, b"\xff" * 40, bytes(range(256))):
            sock.sendto(junk, ("127.0.0.1", server))
    assert ask(server, "web1.lab.test").header.rcode == RCODE.NOERROR

"""The transport's durability order (``netboot.servers.dhcp.flush_then_send``) over a real SQLite store.

A reply counts as sent when the send callable is asked; at that moment a second connection must already
read the batch's lease from disk. A flush that really fails (the table dropped under the store) sends
nothing and leaves the staged leases for the next try. The same order under a real DHCP client and a
held write lock is ``tests/netns/test_dhcp_peers.py::test_no_ack_goes_out_before_its_lease_is_durable``.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.dhcp.service import Outgoing
from netboot.mac import MacAddress
from netboot.servers.dhcp import flush_then_send
from netboot.store import Store
from netboot.store.leases import Lease

IP = IPv4Address("10.0.0.100")
MAC = MacAddress.from_bytes(bytes.fromhex("525400000001"))


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two unconnected UDP sockets: only their identity is used, nothing is sent on them."""
    pair = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield pair
    for sock in pair:
        sock.close()


def on_disk(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [ip for (ip,) in conn.execute("SELECT ip FROM leases")]


def lease() -> Lease:
    return Lease(ip=IP, mac=MAC, client_id=None, hostname=None, starts=1_000.0, expires=1_600.0)


def replies(socks: tuple[socket.socket, socket.socket]) -> list[tuple[socket.socket, Outgoing]]:
    return [(sock, Outgoing(b"ACK %d" % n, ("10.0.0.100", 68), 2)) for n, sock in enumerate(socks)]


def test_every_reply_goes_out_after_its_lease_is_on_disk(
    store: Store, db: Path, sockets: tuple[socket.socket, socket.socket]
) -> None:
    store.leases.stage(IP, lease())
    seen_at_send: list[tuple[socket.socket, bytes, list[str]]] = []

    def send(sock: socket.socket, out: Outgoing) -> None:
        seen_at_send.append((sock, out.data, on_disk(db)))

    assert flush_then_send(store.flush_for_replies, replies(sockets), send)
    assert seen_at_send == [(sockets[0], b"ACK 0", [str(IP)]), (sockets[1], b"ACK 1", [str(IP)])]
    assert not store.leases.pending()


def test_a_failed_flush_sends_nothing_and_keeps_the_leases_staged(
    store: Store, db: Path, sockets: tuple[socket.socket, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(db) as conn:  # a real fault: the table is gone under the store
        conn.execute("ALTER TABLE leases RENAME TO leases_away")
    store.leases.stage(IP, lease())
    sent: list[Outgoing] = []
    with caplog.at_level(logging.ERROR, logger="netboot.dhcp"):
        sent_any = flush_then_send(
            store.flush_for_replies, replies(sockets), lambda _s, out: sent.append(out)
        )
    assert not sent_any
    assert sent == []
    assert "withholding 2 replies" in caplog.text
    assert store.leases.pending(), "the lease must wait for the next flush, not be dropped"

    with sqlite3.connect(db) as conn:  # the store is back: the next batch's flush writes it
        conn.execute("ALTER TABLE leases_away RENAME TO leases")
    assert flush_then_send(store.flush_for_replies, replies(sockets), lambda _s, out: sent.append(out))
    assert [out.data for out in sent] == [b"ACK 0", b"ACK 1"]
    assert on_disk(db) == [str(IP)]

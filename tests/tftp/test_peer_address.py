"""A resolver is told which of our addresses a request came to (IP_PKTINFO on a 0.0.0.0 listener): a
per-MAC config rendered for a TFTP client must name the server the client can reach, and a daemon bound
to every address has no other way to know it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from netboot.events import EventRecorder, MemorySink
from netboot.protocol.tftp import BytesSource
from netboot.servers.tftp import TftpPeer, TftpServer, TftpSource

from .client import RawClient


@pytest.fixture
def seen() -> Iterator[tuple[list[TftpPeer], tuple[str, int]]]:
    peers: list[TftpPeer] = []

    def resolver(name: str, peer: TftpPeer) -> TftpSource:
        peers.append(peer)
        return BytesSource(f"{name} for {peer.ip} via {peer.local}\n".encode())

    server = TftpServer(("0.0.0.0", 0), resolver, EventRecorder(MemorySink()), timeout=0.2, retries=3)
    thread = threading.Thread(target=server.serve_forever, name="tftp-peer-test", daemon=True)
    thread.start()
    try:
        yield peers, server.server_address
    finally:
        server.shutdown()
        thread.join(5)
        server.close()


@pytest.mark.parametrize("local", ["127.0.0.1", "127.0.0.3"])
def test_resolver_sees_the_local_address_the_request_was_sent_to(
    seen: tuple[list[TftpPeer], tuple[str, int]], local: str
) -> None:
    peers, (_host, port) = seen
    with RawClient((local, port)) as client:
        data, _options, _tid = client.download("grub/grub.cfg")
    assert data == f"grub/grub.cfg for 127.0.0.1 via {local}\n".encode()
    assert peers[-1].local == local and peers[-1].ip == "127.0.0.1" and peers[-1].port > 0

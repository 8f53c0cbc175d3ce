"""Hostile input: the traversal corpus over the wire, tftpy's killer requests, floods and exhaustion.

Every request here must be answered with an ERROR (or nothing) and never with a byte from outside the
root; afterwards the server must still serve an honest client.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from netboot.protocol.tftp import Ack, Data, Error, OptionAck, Packet, ReadRequest, decode
from netboot.servers.tftp import ChainResolver, RootResolver
from tests.tftp.client import RawClient
from tests.tftp.conftest import SECRET, Running, ServerFactory, Tree, wait_for
from tests.tftp.test_fs import traversal_corpus


def raw_rrq(name: bytes, tail: bytes = b"octet\x00") -> bytes:
    return b"\x00\x01" + name + b"\x00" + tail


def replies(client: RawClient, first: float = 2.0, quiet: float = 0.05) -> list[bytes]:
    """Every datagram that arrives until the line is quiet."""
    out = []
    client.sock.settimeout(first)
    try:
        while True:
            out.append(client.sock.recvfrom(70000)[0])
            client.sock.settimeout(quiet)
    except TimeoutError:
        return out


def drain(client: RawClient) -> list[tuple[Packet, tuple[str, int]]]:
    """What is already queued on ``client``'s socket, without waiting for more."""
    out = []
    timeout = client.sock.gettimeout()
    client.sock.setblocking(False)
    try:
        while True:
            out.append(client.recv())
    except BlockingIOError:
        return out
    finally:
        client.sock.settimeout(timeout)


def assert_refused(client: RawClient, what: str) -> None:
    got = replies(client)
    assert got, f"no answer to {what!r}"
    for datagram in got:
        assert SECRET not in datagram, what
        assert isinstance(decode(datagram), Error), (what, datagram[:40])


def test_traversal_corpus_over_the_wire(served: Running, tree: Tree) -> None:
    names = traversal_corpus(tree)
    with RawClient(served.address) as client:
        for name in names:
            client.send(raw_rrq(name.encode("utf-8", "surrogateescape"), b"octet\x00tsize\x000\x00"))
            assert_refused(client, name[:80])
        for raw in (
            b"\x00\x01../secret.txt",  # name without NUL
            b"\x00\x01../secret.txt\x00octet",  # mode without NUL
            raw_rrq(b"f.bin", b"../secret.txt\x00"),  # NUL inside the "name": the rest is the mode
            raw_rrq(b"%2e%2e/secret.txt"),
            raw_rrq(b"..\\..\\..\\..\\etc\\passwd"),
            raw_rrq(b"/" * 30000 + b"../secret.txt"),
        ):
            client.send(raw)
            assert_refused(client, repr(raw[:40]))
    assert wait_for(lambda: len(served.events()) >= len(names))
    assert all(e.detail["bytes"] == 0 for e in served.events())
    assert all(len(e.detail["file"]) <= 300 for e in served.events())  # 64 KiB names are clipped
    with RawClient(served.address) as client:
        assert client.download("small.txt")[0] == tree.files["small.txt"]


def refusal_of(served: Running, requested: str) -> Any:
    """The one event the server recorded for an attack: proof that the request reached it and was refused
    (a client that never connected would leave none), with nothing sent."""
    assert wait_for(lambda: bool(served.events()))
    events = served.events()
    assert [(e.detail["file"], e.detail["outcome"], e.detail["bytes"]) for e in events] == [
        (requested, "refused", 0)], events
    return events[0]


#: curl's exit status for a TFTP ERROR 2 from the server (CURLE_TFTP_PERM); no answer at all would be 28
CURL_TFTP_PERM = 69


@pytest.mark.parametrize("path", ["../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "..%5csecret.txt",
                                  "out", "abs-out", "sibling", "sub", "subdir-out/secret"])
def test_traversal_with_curl(served: Running, tmp_path: Path, path: str) -> None:
    curl = shutil.which("curl") or pytest.skip("curl is not installed")
    out = tmp_path / "out"
    host, port = served.address
    result = subprocess.run([curl, "-sS", "--path-as-is", "-o", str(out), f"tftp://{host}:{port}/{path}"],
                            capture_output=True, timeout=30, check=False)
    # curl decodes the URL's percent escapes before it sends the RRQ: %2e%2e/ arrives as ../
    assert refusal_of(served, unquote(path)).detail["error_code"] == 2
    assert result.returncode == CURL_TFTP_PERM, result  # curl heard the access violation, nothing else
    assert not out.exists() or SECRET not in out.read_bytes()


@pytest.mark.parametrize("tool", ["tftp", "atftp"])
@pytest.mark.parametrize("path", ["../secret.txt", "..\\secret.txt", "../tftp2/secret", "sibling", "out"])
def test_traversal_with_cli_clients(served: Running, tmp_path: Path, tool: str, path: str) -> None:
    binary = shutil.which(tool) or pytest.skip(f"{tool} is not installed")
    out = tmp_path / "out"
    host, port = served.address
    if tool == "tftp":
        argv = [binary, "-m", "binary", host, str(port), "-c", "get", path, str(out)]
        told = "Error code 2: access violation"  # tftp-hpa exits 0 even then: its output is the proof
    else:
        argv = [binary, "-g", "-r", path, "-l", str(out), host, str(port)]
        told = "error received from server <access violation>"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert refusal_of(served, path).detail["error_code"] == 2
    assert told in result.stdout + result.stderr, result
    assert not out.exists() or SECRET not in out.read_bytes()


def test_tftpy_killers_do_not_stop_the_server(start_server: ServerFactory, tree: Tree) -> None:
    """tftpy 0.8.7 ends its server loop on: an RRQ for a directory, blksize=abc, a dynamic file object."""
    run = start_server(ChainResolver(lambda name, client: b"dynamic!" if name == "dyn" else None,
                                     RootResolver(tree.root)))
    with RawClient(run.address) as client:
        client.send(ReadRequest("sub"))
        assert client.recv()[0] == Error(2, "access violation")
        client.send(ReadRequest("small.txt", "octet", (("blksize", "abc"), ("tsize", "0"))))
        packet, tid = client.recv()
        assert packet == OptionAck((("tsize", "13"),))  # blksize ignored, not fatal
        client.send(Ack(0), tid)
        assert client.recv()[0] == Data(1, tree.files["small.txt"])
        client.send(Ack(1), tid)
        assert client.download("dyn")[0] == b"dynamic!"
        assert client.download("small.txt")[0] == tree.files["small.txt"]


def _garbage(i: int) -> bytes:
    kinds = [
        b"",
        b"\x00",
        os.urandom(1 + i % 700),
        b"\x00\x03\x00\x01" + os.urandom(512),  # DATA to the request port
        b"\x00\x04\x00\x01",  # ACK to the request port
        b"\x00\x05\x00\x00oops\x00",  # ERROR to the request port (must not be answered)
        b"\x00\x01" + b"A" * (i % 1500),  # name without NUL
        b"\x00\x01f.bin\x00",  # mode missing
        b"\x00\x06blksize\x00",  # OACK to a server
        b"\x00\x07" + os.urandom(20),
        b"\x00\x01f.bin\x00octet\x00" + b"\x00" * (i % 50),
        b"\x00\x02up\x00octet\x00",  # WRQ
    ]
    return kinds[i % len(kinds)]


def test_flood_of_malformed_datagrams_leaves_the_server_answering(
    start_server: ServerFactory, tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="netboot.tftp")
    run = start_server()
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    try:
        for sock in senders:
            sock.bind(("127.0.0.1", 0))
        deadline = time.monotonic() + 10
        for i in range(6000):
            if time.monotonic() > deadline:
                break
            senders[i % len(senders)].sendto(_garbage(i), run.address)
            if i % 500 == 0:  # an honest client in the middle of the storm
                with RawClient(run.address) as client:
                    assert client.download("sub/inner.bin")[0] == tree.files["sub/inner.bin"]
    finally:
        for sock in senders:
            sock.close()
    with RawClient(run.address) as client:
        assert client.download("f.bin", {"blksize": "1468", "windowsize": "8"})[0] == tree.files["f.bin"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 0 < len(warnings) <= 25  # rate-limited: the log cannot be flooded either
    assert run.thread.is_alive()


def test_flood_on_a_transfer_port_does_not_disturb_it(served: Running, tree: Tree) -> None:
    """A stranger flooding a transfer's port gets ERROR 5 for each datagram it is answered (RFC 1350; an
    ERROR is never answered), never a byte of the file, and the client's download is byte for byte."""
    with RawClient(served.address) as client, RawClient(served.address) as attacker, \
            RawClient(served.address) as witness:
        client.send(ReadRequest("exact.bin", "octet", (("blksize", "1468"),)))
        _, tid = client.recv()
        attacker.send(Error(0, "spoofed"), tid)  # must be ignored, and must not end the client's transfer
        witness.send(Ack(0), tid)  # answered after the spoofed ERROR was handled: one socket, in order
        assert witness.recv() == (Error(5, "unknown transfer ID"), tid)
        assert drain(attacker) == []
        garbage = [_garbage(i) or b"\x00\x04\x00\x01" for i in range(2000)]
        for datagram in garbage:
            attacker.send(datagram, tid)
        client.send(Ack(0), tid)
        chunks, block = [], 0
        while True:
            packet, addr = client.recv()
            assert addr == tid
            if isinstance(packet, OptionAck):  # our ACK 0 drowned in the flood (socket buffer full)
                client.send(Ack(0), tid)
                continue
            assert isinstance(packet, Data)
            if packet.block == block + 1:
                chunks.append(packet.payload)
                block += 1
                if len(packet.payload) < 1468:
                    client.send(Ack(block), tid)
                    break
            client.send(Ack(block), tid)  # also re-ACK a duplicate, as real clients do
        # The flood was queued on that port before the client's ACK 0, so the server had handled all of it
        # before its first DATA: whatever it sent the attacker is here (all the attacker's buffer held).
        answers = drain(attacker)
    assert b"".join(chunks) == tree.files["exact.bin"]
    spoofed_errors = sum(datagram[:2] == b"\x00\x05" for datagram in garbage)
    assert 0 < len(answers) <= len(garbage) - spoofed_errors
    assert set(answers) == {(Error(5, "unknown transfer ID"), tid)}
    assert wait_for(lambda: bool(served.events()))
    assert [e.detail["outcome"] for e in served.events()] == ["complete"]


def test_request_flood_is_capped_then_recovers(start_server: ServerFactory, tree: Tree) -> None:
    """Valid RRQs that are never ACKed cannot exhaust descriptors: the cap answers "server busy".

    The silent transfers give up after 0.5 s + 0.5 s, not sooner: a slot freed while the 50 requests are
    still being read would let a 21st through (with 0.05 s timers, a loaded machine can take that long)."""
    run = start_server(max_transfers=20, timeout=0.5, max_timeout=0.5, retries=1)
    socks = []
    try:
        for _ in range(50):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(2)
            sock.sendto(raw_rrq(b"f.bin"), run.address)
            socks.append(sock)
        firsts = [decode(sock.recvfrom(2000)[0]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert sum(isinstance(p, Data) for p in firsts) == 20
    assert sum(p == Error(0, "server busy") for p in firsts) == 30
    assert wait_for(lambda: run.server.active_transfers == 0, timeout=30)
    with RawClient(run.address) as client:
        assert client.download("small.txt")[0] == tree.files["small.txt"]

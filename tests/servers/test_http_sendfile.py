"""File responses go out by sendfile(2) through the real server (waitress + the Flask app) on loopback.

The kernel-sized file of the ``runtime`` fixture (tests/servers/conftest.py) is fetched by curl and
by a deliberately slow raw-socket reader, so the server's socket fills and the send resumes many times;
``os.sendfile`` is wrapped (it still does the sending) to count what it sent.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.runtime import Runtime
from tests.servers.conftest import KERNEL, KERNEL_SIZE, Serve, connect, curl

pytestmark = pytest.mark.timeout(120)

PATH = f"/files/debian12-preseed/{KERNEL}"


@pytest.fixture
def sendfile_bytes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes each ``os.sendfile`` call sent (the real call, counted)."""
    sent: list[int] = []
    real = os.sendfile

    def counted(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        n = real(out_fd, in_fd, offset, count)
        sent.append(n)
        return n

    monkeypatch.setattr(os, "sendfile", counted)
    yield sent


def kernel_file(rt: Runtime) -> Path:
    profile = rt.core.profiles.get("debian12-preseed")
    assert profile is not None and profile.data_dir is not None
    return Path(profile.data_dir) / KERNEL


def read_response(sock: socket.socket, pause: float = 0.0) -> tuple[bytes, bytes]:
    """(headers, body) read until the server closes; ``pause`` seconds between reads."""
    data = bytearray()
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionError:
            break
        if not piece:
            break
        data += piece
        if pause:
            time.sleep(pause)
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_a_kernel_goes_out_whole_by_sendfile(runtime: Runtime, serve: Serve,
                                             sendfile_bytes: list[int]) -> None:
    port = serve()
    got = curl("-f", f"http://127.0.0.1:{port}{PATH}")
    assert got.returncode == 0, got.stderr
    assert hashlib.sha256(got.stdout).digest() == hashlib.sha256(kernel_file(runtime).read_bytes()).digest()
    assert sum(sendfile_bytes) == KERNEL_SIZE  # every body byte, none read into Python


def test_a_slow_reader_gets_every_byte_in_order(runtime: Runtime, serve: Serve,
                                                sendfile_bytes: list[int]) -> None:
    port = serve()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # the server's sends stall often
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    head, body = read_response(sock, pause=0.0005)
    sock.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == kernel_file(runtime).read_bytes()
    assert len(sendfile_bytes) > 10  # resumed after the socket filled, from where it stopped


def test_range_and_keep_alive_after_a_file(runtime: Runtime, serve: Serve) -> None:
    port = serve()
    content = kernel_file(runtime).read_bytes()
    ranged = curl("-f", "-r", "1000-70999", f"http://127.0.0.1:{port}{PATH}")
    assert ranged.stdout == content[1000:71000]
    # two files on one connection: the second answer starts right after the first file's last byte
    both = curl("-f", f"http://127.0.0.1:{port}{PATH}", f"http://127.0.0.1:{port}{PATH}")
    assert both.stdout == content + content
    assert b"Re-using existing connection" in curl("-v", "-o", "/dev/null", "-o", "/dev/null",
                                                  f"http://127.0.0.1:{port}{PATH}",
                                                  f"http://127.0.0.1:{port}{PATH}").stderr


def test_a_file_that_shrinks_while_sent_ends_the_connection(runtime: Runtime, serve: Serve) -> None:
    port = serve()
    sock = connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(30)
    sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    os.truncate(kernel_file(runtime), 1 << 20)  # an admin replacing the file in place
    started = time.monotonic()
    _, rest = read_response(sock)
    sock.close()
    # the connection ends (the client sees a short body, not a hang), long before the read timeout
    assert time.monotonic() - started < 20
    assert len(first) + len(rest) < KERNEL_SIZE

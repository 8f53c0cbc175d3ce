"""The real HTTP server (waitress + the Flask app) on loopback within ``http:`` limits (issue 15, finding 4).

Each test starts :class:`netboot.servers.http.HttpServer` on 127.0.0.1 with a free port, serving a runtime
over a temporary data dir whose debian12-preseed profile serves a kernel-sized file under ``/files``, and
talks to it with raw sockets (to be slow or greedy on purpose) and curl (a real client that must still get
its boot script and kernel). On waitress's defaults a 64 MiB body is read to the end before anyone answers,
100 idle connections fill the server for 120 s, a header trickled byte by byte holds a connection for ever,
and a descriptor numbered past 1024 stops the whole I/O loop (``select()``).
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from netboot.config import HttpConfig
from netboot.servers.http import SWEEP_INTERVAL
from tests.servers.conftest import CURL, KERNEL, KERNEL_SIZE, MAC, Serve, closed_by_peer, connect, curl

pytestmark = pytest.mark.timeout(120)


class Trickler:
    """Sends one byte of a never-ending request header to each socket every ``interval`` (slowloris)."""

    def __init__(self, socks: list[socket.socket], interval: float = 0.5, limit: float = 60) -> None:
        self.socks, self.interval, self.limit = socks, interval, limit
        self.stop = threading.Event()
        self.cut: dict[int, float] = {}  # index -> when a send failed
        for sock in socks:
            sock.sendall(b"GET /boot.ipxe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def _run(self) -> None:
        end = time.monotonic() + self.limit
        while not self.stop.wait(self.interval) and time.monotonic() < end:
            for index, sock in enumerate(self.socks):
                if index in self.cut:
                    continue
                try:
                    sock.send(b"a")
                except OSError:
                    self.cut[index] = time.monotonic()


def test_a_64_mib_body_gets_413_before_it_is_read(serve: Serve) -> None:
    port = serve(HttpConfig(max_body=1 << 20))
    with connect(port) as sock:
        sock.sendall(b"POST /api/v1/systems HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (64 << 20))
        # the answer comes with no body byte sent: the server refused on the header alone
        assert sock.recv(4096).split(b" ")[1] == b"413"
        # and it closed the connection: what it would take of the 64 MiB is what the kernel buffers
        sent = 0
        chunk = b"x" * (1 << 20)
        with pytest.raises(OSError):
            while sent < 64 << 20:
                sent += sock.send(chunk)
        assert sent < 16 << 20
    # a body within the limit reaches the app (which wants a token for it)
    small = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                 "--data-binary", "{}", f"http://127.0.0.1:{port}/api/v1/systems")
    assert small.stdout == b"401", small


def test_headers_larger_than_the_limit_get_431(serve: Serve) -> None:
    port = serve(HttpConfig(max_header=8 << 10))
    with connect(port) as sock:
        big = b"X-Big: " + b"a" * (16 << 10)
        sock.sendall(b"GET /boot.ipxe HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big + b"\r\n\r\n")
        assert sock.recv(4096).split(b" ")[1] == b"431"  # waitress answers HTTP/1.0 here
    ok = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Fine: " + "a" * (4 << 10),
              f"http://127.0.0.1:{port}/boot.ipxe?mac={MAC}")
    assert ok.stdout == b"200", ok


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_200_slow_connections_do_not_stop_a_machine_booting(serve: Serve, tmp_path: Path) -> None:
    port = serve()  # the shipped defaults
    idle = [connect(port) for _ in range(100)]
    slow = [connect(port) for _ in range(100)]
    try:
        with Trickler(slow, limit=60) as trickler:
            time.sleep(1)  # all 200 accepted or queued by now
            began = time.monotonic()
            script = curl(f"http://127.0.0.1:{port}/boot.ipxe?mac={MAC}", timeout=10)
            assert script.returncode == 0, script.stderr
            assert script.stdout.startswith(b"#!ipxe") and f"/files/debian12-preseed/{KERNEL}".encode() \
                in script.stdout, script.stdout
            kernel = tmp_path / "linux"
            url = f"http://127.0.0.1:{port}/files/debian12-preseed/{KERNEL}"
            got = curl("-o", str(kernel), url, timeout=20)
            assert got.returncode == 0, got.stderr
            assert kernel.stat().st_size == KERNEL_SIZE
            assert kernel.read_bytes() == (tmp_path / "tree" / KERNEL).read_bytes()
            assert time.monotonic() - began < 15
            # the slow clients were held open all along, not refused: the server served around them
            assert not trickler.cut
            assert not any(closed_by_peer(sock) for sock in idle)
    finally:
        for sock in idle + slow:
            sock.close()


def test_idle_and_trickling_connections_are_cut_after_the_timeout(serve: Serve) -> None:
    timeout = 2
    port = serve(HttpConfig(idle_timeout=timeout))
    start = time.monotonic()
    idle = connect(port)
    answered = connect(port)  # a finished request, then silence on the kept-alive connection
    answered.sendall(f"GET /boot.ipxe?mac={MAC} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert answered.recv(65536).startswith(b"HTTP/1.1 200 ")
    slow = connect(port)
    deadline = start + timeout + SWEEP_INTERVAL + 3
    cut: dict[str, float] = {}
    with Trickler([slow], interval=0.3, limit=deadline - start + 1) as trickler:
        while time.monotonic() < deadline and len(cut) < 3:
            for name, sock in (("idle", idle), ("answered", answered)):
                if name not in cut and closed_by_peer(sock):
                    cut[name] = time.monotonic() - start
            if "slow" not in cut and (0 in trickler.cut or closed_by_peer(slow)):
                cut["slow"] = time.monotonic() - start
            time.sleep(0.05)
    for sock in (idle, answered, slow):
        sock.close()
    assert set(cut) == {"idle", "answered", "slow"}, cut
    # none before the timeout: they are cut for being idle or slow, not at random
    assert all(timeout - 0.5 <= when <= timeout + SWEEP_INTERVAL + 2 for when in cut.values()), cut


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_serves_on_descriptors_past_1024(serve: Serve) -> None:
    """Near its connection limit the daemon holds descriptors past FD_SETSIZE: ``select()`` fails on them."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        pytest.skip("RLIMIT_NOFILE too low to open 1100 descriptors")
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        port = serve()
        got = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/boot.ipxe?mac={MAC}",
                   timeout=10)
        assert got.stdout == b"200", got
    finally:
        for fd in fillers:
            os.close(fd)

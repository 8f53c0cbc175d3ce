"""The real HTTP server on loopback for this directory's tests: a runtime over a temporary data dir whose
debian12-preseed profile serves a kernel-sized file under ``/files``, :class:`HttpServer` serving it on a
free port, and the clients the tests talk to it with (curl, raw sockets)."""

from __future__ import annotations

import hashlib
import select
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot import registration
from netboot.config import Config, HttpConfig, LoadersConfig
from netboot.runtime import Runtime, build_runtime
from netboot.servers.http import HttpServer
from netboot.webapp import create_app

REPO = Path(__file__).resolve().parents[2]
MAC = "52:54:00:12:34:56"
KERNEL = "debian-installer/amd64/linux"
INITRD = "debian-installer/amd64/initrd.gz"
KERNEL_SIZE = 32 << 20
CURL = shutil.which("curl")

Serve = Callable[..., int]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose registered machine installs debian12-preseed from a data tree under ``tmp_path``."""
    profiles = tmp_path / "profiles"
    shutil.copytree(REPO / "profiles", profiles)
    tree = tmp_path / "tree"
    (tree / KERNEL).parent.mkdir(parents=True)
    # a kernel-sized file with varied content, so a truncated or mixed-up download shows in its hash
    (tree / KERNEL).write_bytes(hashlib.sha256(b"kernel").digest() * (KERNEL_SIZE // 32))
    (tree / INITRD).write_bytes(b"initrd " * 1000)
    yaml = profiles / "debian12-preseed" / "profile.yaml"
    text = yaml.read_text()
    start = text.index("data_dir: ")
    yaml.write_text(text[:start] + f"data_dir: {tree}" + text[text.index("\n", start):])
    loaders = tmp_path / "loaders"
    loaders.mkdir()
    (loaders / "ipxe.efi").write_bytes(b"MZ fake ipxe.efi")
    (loaders / "undionly.kpxe").write_bytes(b"fake undionly.kpxe")
    config = replace(Config(), data_dir=tmp_path / "data", profiles_dir=profiles,
                     server_ip=IPv4Address("127.0.0.1"), loaders=LoadersConfig(dir=loaders))
    rt = build_runtime(config)
    assert rt.profile_errors == []
    system = registration.register(rt, MAC, "debian12-preseed", "web1")
    rt.recorder.learn("127.0.0.1", system.mac)  # what the DHCP service does when it leases to the MAC
    yield rt
    rt.close()


@pytest.fixture
def serve(runtime: Runtime) -> Iterator[Serve]:
    """``serve(limits)``: the real HTTP server on 127.0.0.1, a free port; returns the port."""
    started: list[tuple[HttpServer, threading.Thread]] = []

    def start(limits: HttpConfig | None = None) -> int:
        server = HttpServer(create_app(runtime), "127.0.0.1", 0, limits=limits or HttpConfig())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server.port

    yield start
    for server, thread in started:
        server.shutdown()
        thread.join(5)


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run([CURL, "-sS", "--noproxy", "*", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 5, check=False)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); False while it is open (data is discarded)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionError:
            return True
    return False



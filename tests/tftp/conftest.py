"""Fixtures for the TFTP tests: a served tree with hostile neighbours, and servers on loopback port 0."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from netboot.events import EventRecorder, MemorySink
from netboot.servers import tftp_transfers
from netboot.servers.tftp import RootResolver, TftpResolver, TftpServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tftp"
SECRET = b"TOP-SECRET-do-not-serve-"


@dataclass
class Tree:
    """``root`` is served; ``outside`` holds what must never come out of it."""

    base: Path
    root: Path
    files: dict[str, bytes]
    secrets: list[bytes]
    has_device: bool


def _random(size: int, seed: int) -> bytes:
    return (seed.to_bytes(4, "big") * (size // 4 + 1))[:size] if size < 64 else os.urandom(size)


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """A TFTP root with files of awkward sizes, symlinks in and out, a sibling-prefix root and specials."""
    base = tmp_path_factory.mktemp("tftp-tree")
    srv = base / "srv"
    root = srv / "tftp"
    (root / "sub").mkdir(parents=True)
    (root / "pxelinux.cfg").mkdir()
    files = {
        "f.bin": os.urandom(3_000_000 + 123),  # not a block multiple for any tested blksize
        "exact.bin": os.urandom(1468 * 512),  # a multiple of 512 and 1468: ends with an empty block
        "empty.bin": b"",
        "ipxe.efi": os.urandom(1_035_264),  # what the captured OVMF requests ask for
        "small.txt": b"hello\nworld\r\n",
        "sub/inner.bin": os.urandom(70_000),
        "pxelinux.cfg/default": b"DEFAULT local\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    secrets = [SECRET + b"parent", SECRET + b"sibling"]
    (srv / "secret.txt").write_bytes(secrets[0])
    (srv / "tftp2").mkdir()
    (srv / "tftp2" / "secret").write_bytes(secrets[1])
    (root / "out").symlink_to("../secret.txt")  # relative symlink leading out
    (root / "abs-out").symlink_to(srv / "secret.txt")  # absolute symlink leading out
    (root / "sibling").symlink_to("../tftp2/secret")  # /srv/tftp2 starts with /srv/tftp
    (root / "subdir-out").symlink_to(srv / "tftp2")  # a directory symlink leading out
    (root / "inlink").symlink_to("sub/inner.bin")  # stays inside: allowed
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    has_device = True
    try:
        os.mknod(root / "zero", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero's numbers
    except (PermissionError, OSError):
        has_device = False
    files["inlink"] = files["sub/inner.bin"]
    return Tree(base, root, files, secrets, has_device)


@dataclass
class Running:
    server: TftpServer
    sink: MemorySink
    thread: threading.Thread

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address

    def events(self) -> list[Any]:
        return list(self.sink.events)


ServerFactory = Callable[..., Running]


def fast_extension() -> ModuleType:
    """The built C fast path; a test that needs it fails (never skips) when it was not built."""
    if tftp_transfers.fast_extension is None:
        pytest.fail("netboot/servers/_tftp_fast.c is not built (pip install -e . needs gcc and "
                    "the Python headers; make test installs both)")
    return tftp_transfers.fast_extension


@pytest.fixture(params=["fast-c", "python"])
def start_server(tree: Tree, request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Start TftpServers on 127.0.0.1:0 in threads; all are stopped and closed at teardown.

    Every test runs twice: with the download happy path in the C extension, and with the state machine
    answering every ACK, so both must give the same bytes and the same behaviour on the wire.
    """
    running: list[Running] = []
    fast_path = request.param == "fast-c"
    if fast_path:
        fast_extension()

    def start(resolver: TftpResolver | None = None, **kwargs: Any) -> Running:
        sink = MemorySink()
        kwargs.setdefault("fast_path", fast_path)
        kwargs.setdefault("timeout", 0.2)
        kwargs.setdefault("retries", 3)
        server = TftpServer(("127.0.0.1", 0), resolver or RootResolver(tree.root), EventRecorder(sink),
                            **kwargs)
        thread = threading.Thread(target=server.serve_forever, name="tftp-test", daemon=True)
        thread.start()
        run = Running(server, sink, thread)
        running.append(run)
        return run

    try:
        yield start
    finally:
        for run in running:
            run.server.shutdown()
            run.thread.join(5)
            run.server.close()


@pytest.fixture
def served(start_server: ServerFactory) -> Running:
    return start_server()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until ``predicate`` holds (events are recorded by the server thread)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()

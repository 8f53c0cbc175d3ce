"""A multi-homed server bound to the wildcard address, inside a private network namespace.

Replies must come from the address the client talked to (the client checks the TID's address too);
without IP_PKTINFO the kernel would pick another local address and real firmware would drop the reply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, socket, sys, threading
from pathlib import Path
from netboot.events import EventRecorder, MemorySink
from netboot.servers.tftp import RootResolver, TftpServer

root = Path(sys.argv[1])
server = TftpServer(("0.0.0.0", 0), RootResolver(root), EventRecorder(MemorySink()))
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
port = server.server_address[1]
out = {}
try:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("10.199.0.1", 0))
    sock.settimeout(3)
    sock.sendto(b"\x00\x01hello.txt\x00octet\x00", ("10.199.0.2", port))
    data, addr = sock.recvfrom(2000)
    out["data_from"] = addr[0]
    out["data"] = data[4:].decode()
    sock.sendto(b"\x00\x04\x00\x01", addr)
    sock.sendto(b"\x00\x01missing\x00octet\x00", ("10.199.0.2", port))
    data, addr = sock.recvfrom(2000)
    out["error_from"] = addr[0]
    out["error_code"] = data[3]
finally:
    server.shutdown()
    thread.join(5)
    server.close()
print(json.dumps(out))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    name = f"nbt-tftp{os.getpid() % 100000}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # two addresses on the namespace's own loopback: a multi-homed host without any real link
        _ip("-n", name, "addr", "add", "10.199.0.1/32", "dev", "lo")
        _ip("-n", name, "addr", "add", "10.199.0.2/32", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10, check=False)


def test_wildcard_bind_answers_from_the_address_asked(namespace: str, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"data_from": "10.199.0.2", "data": "hi", "error_from": "10.199.0.2", "error_code": 1}

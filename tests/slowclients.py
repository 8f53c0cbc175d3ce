"""Slow HTTP clients for tests that boot a real machine beside them (run inside a test namespace).

``python slowclients.py HOST PORT COUNT SECONDS``: opens COUNT connections to HOST:PORT, sends each the start
of a request header and then one more byte every second (slowloris), for at most SECONDS. Prints
``open N`` once all are connected, then ``still open N`` every second, so a test can tell that they were
held while its machine booted. Refuses to send anything outside a network namespace.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time


def in_namespace() -> bool:
    found = subprocess.run(
        ["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True, timeout=10
    ).stdout.strip()
    return bool(found)


def main(host: str, port: int, count: int, seconds: float) -> int:
    if not in_namespace():
        print("refusing: not inside a network namespace", flush=True)
        return 2
    end = time.monotonic() + min(seconds, 600)
    socks = []
    for _ in range(min(count, 2000)):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(f"GET /boot.ipxe HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        socks.append(sock)
    print(f"open {len(socks)}", flush=True)
    while time.monotonic() < end and socks:
        time.sleep(1)
        alive = []
        for sock in socks:
            try:
                sock.send(b"a")
                alive.append(sock)
            except OSError:
                sock.close()
        socks = alive
        print(f"still open {len(socks)}", flush=True)
    for sock in socks:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))

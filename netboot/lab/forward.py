"""A TCP relay from the host's loopback into the lab namespace, so a browser on the host opens the UI.

``python -m netboot.lab.forward --listen 127.0.0.1:8099 --netns netboot-lab --to 10.99.0.1:8080``

The listening socket lives in the host's namespace and accepts only on loopback; each connection is
relayed by a thread that first enters the lab namespace (``setns``, which moves only that thread) and
then connects to netboot there. No interface, route or veth joins the two namespaces: the lab still
has no way out, and nothing but this one port reaches in.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import select
import socket
import sys
import threading
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 600.0


def _setns(path: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _pump(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], IDLE_TIMEOUT)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


def _relay(
    client: socket.socket, netns_path: str, target: tuple[str, int], slots: threading.Semaphore
) -> None:
    try:
        _setns(netns_path)
        with socket.create_connection(target, timeout=10) as upstream:
            upstream.settimeout(None)
            _pump(client, upstream)
    except OSError as exc:
        print(f"forward: {exc}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(OSError):
            client.close()
        slots.release()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netboot-lab-forward")
    parser.add_argument("--listen", required=True, help="HOST:PORT on the host's loopback")
    parser.add_argument("--netns", required=True, help="the lab namespace's name")
    parser.add_argument("--to", required=True, help="HOST:PORT inside the lab namespace")
    args = parser.parse_args(argv)
    listen, target = _addr(args.listen), _addr(args.to)
    if not listen[0].startswith("127."):
        parser.error("--listen must be a loopback address (127.x.y.z)")
    netns_path = f"/run/netns/{args.netns}"
    if not os.path.exists(netns_path):
        parser.error(f"no network namespace {args.netns!r}")
    server = socket.create_server(listen, reuse_port=False)
    print(
        f"forward: listening on {listen[0]}:{server.getsockname()[1]} -> "
        f"{args.netns} {target[0]}:{target[1]}",
        flush=True,
    )
    slots = threading.Semaphore(MAX_CONNECTIONS)
    while True:
        client, _ = server.accept()
        if not slots.acquire(blocking=False):
            client.close()
            continue
        threading.Thread(target=_relay, args=(client, netns_path, target, slots), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

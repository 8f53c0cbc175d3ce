"""Run netboot's TftpServer alone for the benchmark: ``netboot_server.py PORT ROOT`` on 127.0.0.1.

SIGTERM stops it cleanly. Events go to a sink that drops them, so the run measures the transport.
For A/B runs, ``NETBOOT_BENCH_SPIN=SECONDS`` overrides the C loop's spin (``netboot.servers.tftp.SPIN``;
0 turns it off), ``NETBOOT_BENCH_LOOPS=N`` runs N loops instead of one per CPU (the daemon's default,
``tftp-loops: auto``; see ``netboot.servers.tftp_loops``), and ``NETBOOT_BENCH_PIN=0`` leaves them
unpinned.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netboot.events import Event, EventRecorder
from netboot.servers.tftp import SPIN, RootResolver
from netboot.servers.tftp_loops import TftpLoops


class NullSink:
    def write(self, event: Event) -> None:
        pass


def main() -> None:
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, format="netboot-bench %(levelname)s %(message)s")
    spin = float(os.environ.get("NETBOOT_BENCH_SPIN", SPIN))
    loops = os.environ.get("NETBOOT_BENCH_LOOPS", "auto")  # the daemon's default
    pin = os.environ.get("NETBOOT_BENCH_PIN", "1") != "0"
    server = TftpLoops(("127.0.0.1", port), RootResolver(root), EventRecorder(NullSink()), loops=loops,
                       pin=pin, spin=spin)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    signal.signal(signal.SIGINT, lambda *_: server.shutdown())
    try:
        server.serve_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()

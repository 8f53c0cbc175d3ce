"""Run netboot's TftpServer alone for the benchmark: ``netboot_server.py PORT ROOT`` on 127.0.0.1.

SIGTERM stops it cleanly. Events go to a sink that drops them, so the run measures the transport.
For A/B runs, ``NETBOOT_BENCH_SPIN=SECONDS`` overrides the C loop's spin (``netboot.servers.tftp.SPIN``;
0 turns it off), and ``NETBOOT_BENCH_LOOPS=N`` (or ``auto``: one per CPU) runs N loops pinned to CPUs
(``netboot.servers.tftp_loops``, the daemon's ``tftp-loops``).
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
    wanted = os.environ.get("NETBOOT_BENCH_LOOPS", "1")
    loops = len(os.sched_getaffinity(0)) if wanted == "auto" else int(wanted)
    server = TftpLoops(("127.0.0.1", port), RootResolver(root), EventRecorder(NullSink()), loops=loops,
                       spin=spin)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    signal.signal(signal.SIGINT, lambda *_: server.shutdown())
    try:
        server.serve_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()

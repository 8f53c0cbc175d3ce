"""Start-up and idle memory, not a test: how long ``netboot serve`` takes to be ready, and its RSS idle.

Run by ``bench/idle.sh`` (root). Each repetition starts the daemon with every service it has (ProxyDHCP,
TFTP, HTTP) in a private namespace (tests/netlab.py), times the interval from the start of the process to
its ready line, waits ``--idle`` seconds with no client, reads ``VmRSS`` from ``/proc``, and stops it.
Prints each repetition and the medians; the targets (issue 17) are under 1.5 s and under 80 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from netlab import Lab, stop  # noqa: E402
from served import start_netboot  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS is read")
    args = ap.parse_args()
    ready: list[float] = []
    rss: list[float] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="nb-idle-") as tmpname:
        srv = lab.host("srv", 1)
        for rep in range(args.reps):
            started = time.monotonic()
            served = start_netboot(lab, srv, Path(tmpname) / f"run{rep}", "--dhcp-mode", "proxy")
            ready.append(time.monotonic() - started)
            time.sleep(args.idle)
            rss.append(rss_mib(served.proc.pid))
            stop(served.proc)
            print(f"rep {rep + 1}: ready after {ready[-1]:.2f} s, idle RSS {rss[-1]:.1f} MiB", flush=True)
    print(f"median: ready after {statistics.median(ready):.2f} s (target < 1.5), "
          f"idle RSS {statistics.median(rss):.1f} MiB (target < 80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark, not a test: netboot full-mode DHCP under perfdhcp, in a private namespace pair.

Usage (root): .venv/bin/python bench/dhcp/perfdhcp_netboot.py [--rate 4000] [--seconds 10] [--clients 20000]
Bounded: perfdhcp runs --seconds at most --rate exchanges/s; everything is torn down afterwards.
perfdhcp acts as a relay (giaddr), so the leased range can be a /16 without configuring those addresses.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from netlab import Lab
from served import start_netboot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=4000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=20000)
    args = parser.parse_args()
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        srv, perf = lab.host("srv", 1), lab.host("perf", 2)
        config = ("dhcp:\n  mode: full\n  subnet: 10.231.0.0/16\n  range: 10.231.0.10-10.231.255.250\n"
                  "  lease-time: 3600\nservices: {tftp: false, http: false}\n")
        start_netboot(lab, srv, Path(tmp), config=config)
        out = perf.run("perfdhcp", "-4", "-l", "eth0", "-r", str(args.rate), "-p", str(args.seconds), "-R",
                       str(args.clients), "-W", "2000000", lab.ip(1), timeout=args.seconds + 60, check=False)
        text = out.stdout + out.stderr
        rate = re.search(r"Rate: ([\d.]+) 4-way", text)
        drops = re.findall(r"drops: (\d+)", text)
        sent = re.findall(r"sent packets: (\d+)", text)
        print(f"asked {args.rate}/s for {args.seconds}s, {args.clients} clients: "
              f"achieved {rate.group(1) if rate else '?'} DORA/s; sent {sent}; drops {drops}")


if __name__ == "__main__":
    main()

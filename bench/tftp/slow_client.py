"""What the C loop's spin costs for a client slower than the spin (any client across a real network).

    .venv/bin/python bench/tftp/slow_client.py [--delay 0.0002] [--file f64.bin] [--reps 3]

Starts ``netboot_server.py`` twice on 127.0.0.1 (ports 16911 and 16912), with the spin on (the default,
``netboot.servers.tftp.SPIN``) and off (``NETBOOT_BENCH_SPIN=0``), and downloads FILE from
``$BENCH_DIR`` (default /tmp/nbt-bench/root, written by ``bench/tftp.sh``) from each in turn with a
client that asks blksize 1468 windowsize 4 and answers each window ``--delay`` seconds late, so that
every spin misses. Prints, per server, the median wall time and the server's CPU time during the
download (``/proc/PID/task/*/schedstat``: every loop thread). Every client socket has a timeout; both
servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netboot.protocol.tftp import Ack, Data, OptionAck, ReadRequest, decode, encode

HERE = Path(__file__).resolve().parent
BLKSIZE, WINDOW = 1468, 4


def download(port: int, name: str, delay: float) -> int:
    """Bytes received; every window is acknowledged ``delay`` seconds after its last block arrived."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        options = (("blksize", str(BLKSIZE)), ("windowsize", str(WINDOW)))
        sock.sendto(encode(ReadRequest(name, options=options)), ("127.0.0.1", port))
        datagram, peer = sock.recvfrom(65536)
        if not isinstance(decode(datagram), OptionAck):
            raise SystemExit(f"no OACK from port {port}: {decode(datagram)}")
        sock.sendto(encode(Ack(0)), peer)
        block, total, last = 0, 0, False
        while not last:
            for _ in range(WINDOW):
                packet = decode(sock.recvfrom(65536)[0])
                if not isinstance(packet, Data) or packet.block != (block + 1) & 0xFFFF:
                    raise SystemExit(f"unexpected datagram from port {port}: {packet}")
                block += 1
                total += len(packet.payload)
                last = len(packet.payload) < BLKSIZE
                if last:
                    break
            time.sleep(delay)
            sock.sendto(encode(Ack(block & 0xFFFF)), peer)
        return total


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` (the server runs a loop thread per CPU)."""
    return sum(int((task / "schedstat").read_text().split()[0])
               for task in Path(f"/proc/{pid}/task").iterdir())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay", type=float, default=0.0002, help="seconds each window's ACK is held back")
    p.add_argument("--file", default="f64.bin")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    root = Path(os.environ.get("BENCH_DIR", "/tmp/nbt-bench")) / "root"
    if not (root / args.file).is_file():
        raise SystemExit(f"{root / args.file} is missing: run bench/tftp.sh once first")
    servers = {"spin on": (16911, {}), "spin off": (16912, {"NETBOOT_BENCH_SPIN": "0"})}
    procs = {name: subprocess.Popen([sys.executable, str(HERE / "netboot_server.py"), str(port), str(root)],
                                    env={**os.environ, **extra})
             for name, (port, extra) in servers.items()}
    try:
        time.sleep(1.0)
        walls: dict[str, list[float]] = {name: [] for name in servers}
        cpus: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.reps):
            for name, (port, _) in servers.items():
                pid = procs[name].pid
                cpu0, start = cpu_ns(pid), time.perf_counter()
                got = download(port, args.file, args.delay)
                walls[name].append(time.perf_counter() - start)
                cpus[name].append((cpu_ns(pid) - cpu0) / 1e6)
                if got != (root / args.file).stat().st_size:
                    raise SystemExit(f"{name}: {got} bytes")
        print(f"# {args.file}, blksize {BLKSIZE} windowsize {WINDOW}, "
              f"each ACK {args.delay * 1e6:.0f} us late, median of {args.reps}")
        for name in servers:
            runs = ", ".join(f"{c:.0f}" for c in cpus[name])
            print(f"{name}: wall {statistics.median(walls[name]):.2f} s, "
                  f"server CPU {statistics.median(cpus[name]):.0f} ms (runs: {runs})")
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()

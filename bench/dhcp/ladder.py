"""DHCP benchmark, not a test: the rate each server sustains under perfdhcp, netboot beside Kea and dnsmasq.

Run by ``bench/dhcp.sh`` (root; it installs kea-dhcp4-server without starting it). For each server a
private lab (tests/netlab.py: the server's namespace at .1, perfdhcp's at .2, a bridge between) is made,
the server started from its own configuration in a temporary directory, and perfdhcp run at rising
offered rates (``--rates``, each for ``--seconds`` s over ``--clients`` simulated clients) until more than
``--max-drop`` of the exchanges go unanswered; the last rate below that is what the server sustains.
The lab is removed before the next server starts.

perfdhcp acts as a relay (it sets giaddr to its own address and sends to the server's), so every server
leases from a /16 without any of those addresses being configured. Servers and what they run:

* ``netboot-full``: ``netboot serve`` in full mode with its default store (SQLite, leases made durable by
  the group commit before each ACK): DISCOVER, OFFER, REQUEST, ACK.
* ``kea``: kea-dhcp4 with the memfile lease backend (its default; leases written to a CSV file), 4-way.
* ``dnsmasq``: dnsmasq's DHCP, 4-way.
* ``netboot-proxy``: ``netboot serve`` in proxy mode, DISCOVER and OFFER only (``perfdhcp -i``), each
  DISCOVER a PXE client netboot has never seen (option 60 ``PXEClient:Arch:00007``, option 93 = 7), and
  ``unknown-default: menu`` so each gets a boot file (under the default, ``local`` with ``local_boot:
  skip``, proxy mode rightly stays silent): the path of a rack of unknown machines booting beside the
  site's DHCP server.
* ``netboot-proxy-mixed``: the same, with perfdhcp's clients drawn from a list of ``--clients`` MACs
  (``perfdhcp -M``) of which half are registered for an install before the daemon starts: known and
  unknown PXE clients booting together, as the issue's ProxyDHCP target asks.

The CPU each server used per step is read from /proc, so the table shows what a rate costs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from netlab import Lab, Netns, wait_for  # noqa: E402
from served import start_netboot  # noqa: E402

SUBNET = "10.231.0.0/16"
POOL = ("10.231.0.10", "10.231.255.250")
#: what a UEFI x64 PXE client sends (tests/dhcp captures): vendor class and client architecture
PXE_OPTIONS = ("-o", "60," + b"PXEClient:Arch:00007:UNDI:003016".hex(), "-o", "93,0007")
SERVERS = ("netboot-full", "kea", "dnsmasq", "netboot-proxy", "netboot-proxy-mixed")
#: the profile the mixed run's registered half installs
MIXED_PROFILE = "debian12-preseed"


@dataclass
class Step:
    server: str
    offered: int
    achieved: float
    sent: int
    dropped: int
    cpu_percent: float

    @property
    def drop_ratio(self) -> float:
        return self.dropped / self.sent if self.sent else 1.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mac_list(tmp: Path, clients: int) -> Path:
    """``clients`` MACs, one per line, for ``perfdhcp -M``."""
    path = tmp / "macs.txt"
    path.write_text("".join(f"52:54:0a:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}\n"
                            for n in range(clients)))
    return path


def register_half(config: str, tmp: Path, macs: Path) -> None:
    """Register every other MAC of ``macs`` in the data directory the daemon will use, before it starts,
    through the function the CLI and API use for a bulk registration."""
    from dataclasses import replace

    from netboot.config import load_config
    from netboot.registration.ops import register_lines
    from netboot.runtime import build_runtime

    (tmp / "netboot.yaml").write_text(config)
    rt = build_runtime(replace(load_config(tmp / "netboot.yaml"), data_dir=tmp / "data"))
    try:
        lines = [f"{mac},bench-{i:05d},{MIXED_PROFILE}"
                 for i, mac in enumerate(macs.read_text().split()) if i % 2 == 0]
        registered, errors = register_lines(rt, "\n".join(lines), "bench", max_lines=len(lines))
        if errors:
            raise SystemExit(f"registering the mixed run's machines: {errors[:3]}")
        print(f"netboot-proxy-mixed: {len(registered)} of {2 * len(lines)} MACs registered", flush=True)
    finally:
        rt.close()


def start(server: str, lab: Lab, ns: Netns, tmp: Path, clients: int) -> int:
    """Start ``server`` in ``ns``; its PID once it answers."""
    if server.startswith("netboot"):
        mode = "full" if server == "netboot-full" else "proxy"
        # unknown machines get the iPXE menu: under the default (local, skip) proxy mode stays silent
        config = (f"unknown-default: menu\ndhcp:\n  mode: {mode}\n  subnet: {SUBNET}\n"
                  f"  range: {POOL[0]}-{POOL[1]}\n  lease-time: 3600\n"
                  "services: {tftp: false, http: false}\n")
        if server == "netboot-proxy-mixed":
            register_half(config, tmp, mac_list(tmp, clients))
        return start_netboot(lab, ns, tmp, config=config).proc.pid
    if server == "kea":
        conf = tmp / "kea.json"
        conf.write_text(json.dumps({"Dhcp4": {
            "interfaces-config": {"interfaces": ["eth0"], "dhcp-socket-type": "udp"},
            "lease-database": {"type": "memfile", "name": str(tmp / "kea-leases.csv"), "lfc-interval": 0},
            "valid-lifetime": 3600,
            "subnet4": [{"id": 1, "subnet": SUBNET, "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}],
            # INFO, Kea's default: it logs each allocation, as netboot logs each answer
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": str(tmp / "kea.log")}]}],
        }}))
        env = {"KEA_PIDFILE_DIR": str(tmp), "KEA_LOCKFILE_DIR": str(tmp)}
        proc = ns.spawn(["kea-dhcp4", "-c", str(conf)], log=tmp / "kea.out", env=env)
    else:
        proc = ns.spawn(["dnsmasq", "-d", "--port=0", "--interface=eth0", "--bind-interfaces", "--no-ping",
                         f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0,1h", "--dhcp-lease-max=1000000",
                         f"--dhcp-leasefile={tmp}/dnsmasq.leases", "--quiet-dhcp"], log=tmp / "dnsmasq.log")
    time.sleep(1.0)  # both bind at once; a step's first second would show a slow start otherwise
    if proc.poll() is not None:
        raise SystemExit(f"{server} exited at start: see {tmp}")
    return proc.pid


def perfdhcp(client: Netns, server_ip: str, server: str, rate: int, args: argparse.Namespace,
             pid: int, tmp: Path) -> Step:
    argv = ["perfdhcp", "-4", "-l", "eth0", "-r", str(rate), "-p", str(args.seconds), "-R",
            str(args.clients), "-W", "1000000"]
    if server.startswith("netboot-proxy"):
        argv += ["-i", *PXE_OPTIONS]
    if server == "netboot-proxy-mixed":
        argv += ["-M", str(tmp / "macs.txt")]
    before = cpu_seconds(pid)
    started = time.monotonic()
    out = client.run(*argv, server_ip, timeout=args.seconds + 60, check=False)
    used = cpu_seconds(pid) - before
    elapsed = time.monotonic() - started
    text = out.stdout + out.stderr
    rate_seen = re.search(r"Rate: ([\d.]+)", text)
    sent = [int(n) for n in re.findall(r"sent packets: (\d+)", text)]
    drops = [int(n) for n in re.findall(r"drops: (\d+)", text)]
    if not sent:
        raise SystemExit(f"perfdhcp printed no counts against {server}:\n{text}")
    # DISCOVERs dropped (no OFFER) and, for 4-way, REQUESTs dropped (no ACK), over DISCOVERs sent
    return Step(server, rate, float(rate_seen.group(1)) if rate_seen else 0.0, sent[0], sum(drops),
                100.0 * used / elapsed)


def ladder(server: str, args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix=f"nb-dhcp-{server}-") as tmpname:
        srv, client = lab.host("srv", 1), lab.host("perf", 2)
        pid = start(server, lab, srv, Path(tmpname), args.clients)
        wait_for(lambda: Path(f"/proc/{pid}").exists(), 5, what=server)
        for rate in args.rates:
            step = perfdhcp(client, lab.ip(1), server, rate, args, pid, Path(tmpname))
            steps.append(step)
            print(f"{server:14} offered {rate:6}/s  achieved {step.achieved:8.1f}/s  "
                  f"dropped {step.dropped}/{step.sent} ({100 * step.drop_ratio:.2f} %)  "
                  f"server CPU {step.cpu_percent:.0f} %", flush=True)
            if step.drop_ratio > args.max_drop:
                break
    return steps


def sustained(steps: list[Step], max_drop: float) -> Step | None:
    good = [s for s in steps if s.drop_ratio <= max_drop]
    return good[-1] if good else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"some of {', '.join(SERVERS)}")
    ap.add_argument("--rates", default="500,1000,1500,2000,3000,4000,6000,8000,12000,16000")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--max-drop", type=float, default=0.001, help="drop ratio that ends a ladder")
    ap.add_argument("--out", type=Path, help="also write the Markdown table and the steps (JSON) here")
    args = ap.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    servers = args.servers.split(",")
    unknown = set(servers) - set(SERVERS)
    if unknown:
        ap.error(f"unknown servers {sorted(unknown)}")
    every: list[Step] = []
    best: dict[str, Step | None] = {}
    for server in servers:
        steps = ladder(server, args)
        every += steps
        best[server] = sustained(steps, args.max_drop)
    kea = best.get("kea")
    lines = ["| server | sustained (offered/s, drops <= "
             f"{100 * args.max_drop:g} %) | achieved/s | server CPU at it | / Kea full mode |",
             "|---|---|---|---|---|"]
    for server, step in best.items():
        if step is None:
            lines.append(f"| {server} | below {args.rates[0]} | - | - | - |")
            continue
        ratio = f"{step.offered / kea.offered:.2f}" if kea else "-"
        lines.append(f"| {server} | {step.offered} | {step.achieved:.0f} | {step.cpu_percent:.0f} % "
                     f"| {ratio} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        steps = json.dumps([asdict(s) for s in every], indent=1)
        args.out.write_text(f"{table}\n```json\n{steps}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

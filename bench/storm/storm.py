"""Boot storm benchmark, not a test: N machines boot at once, netboot alone against dnsmasq + nginx.

Run by ``bench/storm.sh`` (root; it installs dnsmasq-base, nginx-light and python3-matplotlib). For each
N (``--clients``, 50, 200 and 500 by default) and each repetition, one private lab (tests/netlab.py: the
server's namespace, the machines' namespace, a bridge) holds, one after the other:

* ``netboot``: ``netboot serve`` in full DHCP mode with its durable store, its TFTP and HTTP, the N MACs
  registered to a profile (debian12-preseed with the Debian installer's kernel and initrd);
* ``dnsmasq+nginx``: dnsmasq for DHCP and TFTP (the same ``ipxe.efi``) and nginx serving, at the same
  URLs, the boot scripts and answer files netboot rendered for the same machines in the run before, the
  same kernel and initrd, and a ``/done`` that answers 200.

The machines are ``bench/storm/client.py`` processes (``--procs``) in their namespace, which holds every
address of the pool, so each machine fetches from the address it was leased. All start at one instant;
each walks DHCP, TFTP ``ipxe.efi`` (blksize 1468, windowsize 4), then ``boot.ipxe``, kernel, initrd,
answer file and ``/done``. Reported per N and server: the time until the last machine was done, the
median and 99th percentile time to the answer file, the errors (the run fails unless 0), and the CPU the
machines' processes used (a load generator near its cores' limit would flatter the faster server).

``--chart FILE.png`` draws, for the largest N, each machine's time to its answer file (sorted) for both.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from netlab import PYTHON, Lab, Netns, wait_for  # noqa: E402
from nginxconf import nginx_conf  # noqa: E402
from served import start_netboot  # noqa: E402

from netboot import registration  # noqa: E402
from netboot.config import load_config  # noqa: E402
from netboot.runtime import build_runtime  # noqa: E402

DEBIAN = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
IPXE_EFI = Path("/usr/lib/ipxe/ipxe.efi")
PROFILE = "storm"
#: the storm's own network beside the lab's /24: the server at .0.1, the pool from .1.1
NET = "10.234"
SERVER = f"{NET}.0.1"
HTTP_PORT = 8080
SERVERS = ("netboot", "dnsmasq+nginx")


@dataclass
class Run:
    server: str
    clients: int
    machines: list[dict[str, object]]
    client_cpu: float
    wall: float
    errors: list[str] = field(default_factory=list)

    def times(self, phase: str) -> list[float]:
        return sorted(float(m[phase]) for m in self.machines if m.get(phase) is not None)  # type: ignore[arg-type]

    @property
    def naks(self) -> int:
        return sum(int(m.get("naks", 0)) for m in self.machines)  # type: ignore[call-overload]

    @property
    def failed(self) -> int:
        return sum(1 for m in self.machines if m["errors"]) + (0 if self.machines else self.clients)


def pool(clients: int) -> list[str]:
    """The pool: consecutive addresses from NET.1.1, a fifth more than machines (a site's pool has room);
    the machines' namespace holds them all, so whichever a server leases, the machine can use."""
    first = int(ipaddress.IPv4Address(f"{NET}.1.1"))
    return [str(ipaddress.IPv4Address(first + i)) for i in range(clients + clients // 5)]


def macs(clients: int, rep: int) -> list[str]:
    return [f"52:54:{rep:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
            for i in range(clients)]


def add_addresses(ns: Netns, addresses: list[str], tmp: Path) -> None:
    batch = tmp / f"{ns.name}.addr"
    batch.write_text("".join(f"addr add {a}/16 dev eth0\n" for a in addresses))
    ns.run("ip", "-batch", str(batch), timeout=120)


def profiles(tmp: Path) -> Path:
    root = tmp / "profiles"
    shutil.copytree(ROOT / "profiles", root)
    data = tmp / "installer"
    (data / "debian-installer" / "amd64").mkdir(parents=True, exist_ok=True)
    for name in ("linux", "initrd.gz"):
        target = data / "debian-installer" / "amd64" / name
        if not target.exists():
            shutil.copyfile(DEBIAN / name, target)
    (root / PROFILE).mkdir()
    (root / PROFILE / "profile.yaml").write_text(
        "description: boot storm profile (debian12-preseed, the installer in a temporary data_dir)\n"
        f"parent: debian12-preseed\ndata_dir: {data}\n")
    return root


def register(config: Path, data: Path, machines: list[str]) -> None:
    """Register every machine before the daemon starts, through the function the CLI and API use."""
    rt = build_runtime(replace(load_config(config), data_dir=data))
    try:
        for i, mac in enumerate(machines):
            registration.register(rt, mac, PROFILE, f"storm-{i:04d}")
    finally:
        rt.close()


def storm(client: Netns, machines: list[str], procs: int, save: Path | None, tmp: Path) -> Run:
    """Start the machines' processes, let them all begin at one instant, collect their lines."""
    start = time.time() + 2.0 + 0.002 * len(machines)  # every process started and listening by then
    share = -(-len(machines) // procs)
    running = []
    for p in range(procs):
        mine = machines[p * share:(p + 1) * share]
        if not mine:
            continue
        argv = [PYTHON, str(ROOT / "bench" / "storm" / "client.py"), "--macs", ",".join(mine),
                "--first-index", str(p * share), "--start", repr(start)]
        if save is not None:
            argv += ["--save", str(save)]
        out = (tmp / f"client-{p}.out").open("w")
        client.verify()
        running.append((subprocess.Popen([*client.prefix(), *argv], stdout=out, stderr=subprocess.STDOUT,
                                         text=True), out, tmp / f"client-{p}.out"))
    lines: list[dict[str, object]] = []
    cpu = 0.0
    errors = []
    for proc, out, path in running:
        try:
            proc.wait(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            errors.append("a client process did not finish in 900 s")
        out.close()
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if "cpu" in record:
                    cpu += float(record["cpu"])
                else:
                    lines.append(record)
            elif line.strip():
                errors.append(line)
    wall = max((float(m["done"]) for m in lines if m.get("done") is not None), default=0.0)  # type: ignore[arg-type]
    return Run("", len(machines), lines, cpu, wall, errors)


def run_netboot(lab: Lab, srv: Netns, client: Netns, tmp: Path, machines: list[str],
                args: argparse.Namespace, save: Path) -> Run:
    addresses = pool(len(machines))
    config = (f"profiles-dir: {profiles(tmp)}\nserver-ip: {SERVER}\n"
              f"dhcp:\n  mode: full\n  subnet: {NET}.0.0/16\n  range: {addresses[0]}-{addresses[-1]}\n"
              f"  lease-time: 3600\nloaders:\n  dir: {IPXE_EFI.parent}\n")
    work = tmp / "netboot"
    work.mkdir()
    (work / "netboot.yaml").write_text(config)
    register(work / "netboot.yaml", work / "data", machines)
    served = start_netboot(lab, srv, work, config=config, http_port=HTTP_PORT)
    try:
        result = storm(client, machines, args.procs, save, tmp)
    finally:
        served.stop()
    result.server = "netboot"
    return result


#: the routes netboot renders, as static files netboot rendered; /done answers 200 as netboot's does
NGINX_LOCATIONS = """\
        location = /boot.ipxe { default_type text/plain; try_files /boot/$arg_mac.ipxe =404; }
        location /answer/ { default_type text/plain; }
        location /done/ { default_type text/plain; return 200 "ok\\n"; }"""


def run_reference(srv: Netns, client: Netns, tmp: Path, machines: list[str], args: argparse.Namespace,
                  saved: Path) -> Run:
    addresses = pool(len(machines))
    ref = tmp / "reference"
    (ref / "tftp").mkdir(parents=True)
    shutil.copyfile(IPXE_EFI, ref / "tftp" / "ipxe.efi")
    docroot = saved  # boot/<mac>.ipxe and answer/<mac>/preseed.cfg, as netboot rendered them
    (docroot / "files").mkdir(exist_ok=True)
    os.symlink(tmp / "installer", docroot / "files" / PROFILE)
    dnsmasq = srv.spawn(["dnsmasq", "-d", "--port=0", "--interface=eth0", "--bind-interfaces", "--no-ping",
                         f"--dhcp-range={addresses[0]},{addresses[-1]},255.255.0.0,1h",
                         f"--dhcp-boot=ipxe.efi,,{SERVER}", "--enable-tftp", f"--tftp-root={ref / 'tftp'}",
                         f"--tftp-max={len(machines) + 50}", "--dhcp-lease-max=1000000",
                         f"--dhcp-leasefile={ref}/dnsmasq.leases", "--quiet-dhcp", "--quiet-tftp"],
                        log=ref / "dnsmasq.log")
    conf = nginx_conf(ref, f"{SERVER}:{HTTP_PORT}", docroot, NGINX_LOCATIONS)
    srv.run("nginx", "-c", str(conf), "-g", "daemon on;", timeout=30)
    try:
        wait_for(lambda: client.run("curl", "-fsS", "-o", "/dev/null", f"http://{SERVER}:{HTTP_PORT}/done/x",
                                    check=False).returncode == 0, 10, what="nginx")
        time.sleep(0.5)
        if dnsmasq.poll() is not None:
            raise SystemExit(f"dnsmasq exited at start: {(ref / 'dnsmasq.log').read_text()}")
        result = storm(client, machines, args.procs, None, tmp)
    finally:
        pid = (ref / "nginx.pid").read_text().strip() if (ref / "nginx.pid").exists() else ""
        if pid:
            srv.run("kill", pid, check=False)
        dnsmasq.terminate()
        dnsmasq.wait(10)
    result.server = "dnsmasq+nginx"
    return result


def one_round(clients: int, rep: int, args: argparse.Namespace) -> list[Run]:
    """netboot, then the reference, for ``clients`` machines, each in a fresh lab."""
    machines = macs(clients, rep)
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"nb-storm-{clients}-") as tmpname:
        tmp = Path(tmpname)
        saved = tmp / "rendered"
        (saved / "boot").mkdir(parents=True)
        for server in SERVERS:
            with Lab() as lab:
                srv, client = lab.host("srv", 1), lab.host("cli", 2)
                srv.run("ip", "addr", "add", f"{SERVER}/16", "dev", "eth0")
                add_addresses(client, pool(clients), tmp)
                if server == "netboot":
                    run = run_netboot(lab, srv, client, tmp, machines, args, saved)
                else:
                    run = run_reference(srv, client, tmp, machines, args, saved)
            runs.append(run)
            answer = run.times("answer")
            print(f"N={clients:4} rep {rep + 1} {run.server:14} all done {run.wall:7.2f} s  "
                  f"answer p50 {pct(answer, 50):6.2f} s p99 {pct(answer, 99):6.2f} s  "
                  f"failed {run.failed}  NAKs {run.naks}  client CPU {run.client_cpu:.1f} s", flush=True)
            for error in sorted({e for m in run.machines for e in m["errors"]})[:5]:  # type: ignore[attr-defined]
                print(f"    error: {error}")
            for error in run.errors[-6:]:
                print(f"    client: {error}")
    return runs


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def report(runs: list[Run]) -> str:
    """Per N: medians over repetitions of each server, and the ratio reference / netboot for the total
    (above 1: netboot finished the storm sooner)."""
    lines = ["| machines | server | all done s | answer file p50 s | p99 s | failed | NAKs | client CPU s "
             "| dnsmasq+nginx / netboot (all done) |", "|---|---|---|---|---|---|---|---|---|"]
    for clients in sorted({r.clients for r in runs}):
        walls = {}
        for server in SERVERS:
            mine = [r for r in runs if r.clients == clients and r.server == server]
            if not mine:
                continue
            walls[server] = median([r.wall for r in mine])
            p50 = median([pct(r.times("answer"), 50) for r in mine])
            p99 = median([pct(r.times("answer"), 99) for r in mine])
            ratio = ""
            if server == SERVERS[1] and walls.get(SERVERS[0]):
                ratio = f"{walls[server] / walls[SERVERS[0]]:.2f}"
            failed = sum(r.failed for r in mine)
            naks = sum(r.naks for r in mine)
            used = median([r.client_cpu for r in mine])
            lines.append(f"| {clients} | {server} | {walls[server]:.2f} | {p50:.2f} | {p99:.2f} | "
                         f"{failed} | {naks} | {used:.1f} | {ratio} |")
    return "\n".join(lines) + "\n" + phases(runs)


PHASES = ("dhcp", "tftp", "script", "kernel", "initrd", "answer", "done")


def phases(runs: list[Run]) -> str:
    """Where the time goes: the median machine's time at the end of each phase (medians over repetitions)."""
    lines = ["", "| machines | server | " + " | ".join(f"{p} p50 s" for p in PHASES) + " |",
             "|---|---|" + "---|" * len(PHASES)]
    for clients in sorted({r.clients for r in runs}):
        for server in SERVERS:
            mine = [r for r in runs if r.clients == clients and r.server == server]
            if mine:
                cells = [f"{median([pct(r.times(p), 50) for r in mine]):.2f}" for p in PHASES]
                lines.append(f"| {clients} | {server} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = max(r.clients for r in runs)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for server, style in zip(SERVERS, ("-", "--"), strict=True):
        mine = [r for r in runs if r.clients == clients and r.server == server]
        if mine:
            times = mine[0].times("answer")
            ax.plot(range(1, len(times) + 1), times, style, label=f"{server} (answer file)")
    ax.set_xlabel(f"machine, sorted by time to its answer file ({clients} booting at once)")
    ax.set_ylabel("seconds since power-on")
    ax.set_title("Boot storm: time from DHCP DISCOVER to the answer file")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="50,200,500", help="comma-separated numbers of machines")
    ap.add_argument("--procs", type=int, default=2, help="client processes (the machines are shared out)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the Markdown table and every machine's times (JSON)")
    ap.add_argument("--chart", type=Path, help="draw the largest N's times to the answer file (PNG)")
    args = ap.parse_args()
    for tool in ("dnsmasq", "nginx", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: bench/storm.sh installs it")
    for needed in (IPXE_EFI, DEBIAN / "linux", DEBIAN / "initrd.gz"):
        if not needed.is_file():
            raise SystemExit(f"{needed} missing: bench/storm.sh installs ipxe and the Debian installer")
    sizes = [int(n) for n in args.clients.split(",")]
    if max(sizes) > 800:
        raise SystemExit("at most 800 machines: each pool address is a neighbour entry (gc_thresh2 1024)")
    runs: list[Run] = []
    for rep in range(args.reps):
        for clients in sizes:
            runs += one_round(clients, rep, args)
    table = report(runs)
    print(table)
    if args.out:
        detail = [{"server": r.server, "clients": r.clients, "client_cpu": r.client_cpu,
                   "machines": r.machines} for r in runs]
        args.out.write_text(f"{table}\n```json\n{json.dumps(detail)}\n```\n")
    if args.chart:
        chart(runs, args.chart)
        print(f"chart: {args.chart}")
    return 1 if any(r.failed or r.errors for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())

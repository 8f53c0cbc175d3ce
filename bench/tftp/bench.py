"""TFTP throughput: netboot vs tftpd-hpa vs atftpd, same client (atftp), same files, one run.

Called by ``bench/tftp.sh``. Every server listens on 127.0.0.1 on a high port, is started here and
stopped here by its process group id (tftpd-hpa forks per transfer). Every client run has a timeout and
the whole run a time budget, so nothing here can loop for ever.

For each file size, blksize and windowsize: ``reps`` single-client downloads per server (servers taken in
turn, median time kept), then ``clients`` simultaneous downloads (aggregate throughput, median of
``reps``). The first download of every cell is written to disk and compared with the source; the rest
go to /dev/null. windowsize 1 sends no windowsize option (plain lock-step); tftpd-hpa does not know the
option and always runs lock-step. Prints a Markdown table with ratios to tftpd-hpa and to atftpd.

Wall-clock throughput on a shared machine moves with the neighbours' load, so each server also runs in
its own cgroup (``nbt-bench-*``, cpuacct) and a second table gives the server's CPU time per MB moved,
which does not (children and threads included: tftpd-hpa forks per transfer, atftpd uses threads).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass
class Server:
    name: str
    port: int
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    cgroup: Path | None = None

    def cpu_seconds(self) -> float | None:
        """CPU used so far by the server and everything it forked (cgroup v1 cpuacct or v2 cpu.stat)."""
        if self.cgroup is None:
            return None
        usage = self.cgroup / "cpuacct.usage"
        if usage.exists():
            return int(usage.read_text()) / 1e9
        for line in (self.cgroup / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) / 1e6
        return None


def cgroup_root() -> Path | None:
    for candidate in (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        usable = (candidate / "cpuacct.usage").exists() or (candidate / "cgroup.procs").exists()
        if usable and os.access(candidate, os.W_OK):
            return candidate
    return None


@dataclass(frozen=True)
class Cell:
    size_mib: int
    blksize: int
    windowsize: int
    clients: int


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="scratch directory (files, logs)")
    p.add_argument("--atftpd", type=Path, required=True, help="atftpd binary")
    p.add_argument("--in-tftpd", type=Path, default=Path("/usr/sbin/in.tftpd"), help="tftpd-hpa binary")
    p.add_argument("--atftp", default=shutil.which("atftp") or "atftp", help="the one client")
    p.add_argument("--python", default=sys.executable, help="interpreter for netboot")
    p.add_argument("--sizes", default="4,64", help="file sizes in MiB for single-client runs")
    p.add_argument("--concurrent-sizes", default="4",
                   help="file sizes in MiB for concurrent runs ('' for none)")
    p.add_argument("--blksizes", default="512,1468,8192")
    p.add_argument("--windows", default="1,4,8")
    p.add_argument("--clients", type=int, default=20, help="simultaneous clients in the concurrent runs")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--servers", default="netboot,tftpd-hpa,atftpd",
                   help="any of netboot (as the daemon runs it: one loop per CPU, pinned), tftpd-hpa, "
                        "atftpd, and for A/B runs netboot-nospin (the C loop's spin off, port BASE+4), "
                        "netboot-1loop (one loop, BASE+5) and netboot-float (loops not pinned, BASE+6)")
    p.add_argument("--base-port", type=int, default=16900)
    p.add_argument("--budget", type=float, default=3600, help="seconds; later cells are skipped")
    p.add_argument("--run-timeout", type=float, default=300, help="seconds per client run")
    p.add_argument("--pin", choices=["none", "same", "split"], default="none",
                   help="CPU placement: scheduler's choice; servers and clients on CPU 0; servers on 0, "
                        "clients on 1")
    p.add_argument("--sessions", choices=["own", "shared"], default="own",
                   help="own: each server in a session of its own, so with the kernel's autogroup (Linux "
                        "default) it is scheduled as a group beside the clients' group, as a daemon would "
                        "be; shared: servers in the benchmark's session, every server thread a peer of the "
                        "20 clients for CPU")
    return p.parse_args()


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


# ---------------------------------------------------------------------------------------- servers


def make_servers(args: argparse.Namespace, root: Path, logs: Path) -> list[Server]:
    user = "tftp" if _user_exists("tftp") else "nobody"
    all_servers = {
        "netboot": Server("netboot", args.base_port + 3,
                          [args.python, str(HERE / "netboot_server.py"), str(args.base_port + 3), str(root)]),
        # the same build with the C loop's spin off, for A/B runs (--servers netboot,netboot-nospin,...)
        "netboot-nospin": Server("netboot-nospin", args.base_port + 4,
                                 ["env", "NETBOOT_BENCH_SPIN=0", args.python, str(HERE / "netboot_server.py"),
                                  str(args.base_port + 4), str(root)]),
        # one loop instead of one per CPU (tftp-loops: 1)
        "netboot-1loop": Server("netboot-1loop", args.base_port + 5,
                                ["env", "NETBOOT_BENCH_LOOPS=1", args.python,
                                 str(HERE / "netboot_server.py"), str(args.base_port + 5), str(root)]),
        # one loop per CPU as the default, but not pinned
        "netboot-float": Server("netboot-float", args.base_port + 6,
                                ["env", "NETBOOT_BENCH_PIN=0", args.python,
                                 str(HERE / "netboot_server.py"), str(args.base_port + 6), str(root)]),
        "tftpd-hpa": Server("tftpd-hpa", args.base_port + 1,
                            [str(args.in_tftpd), "--foreground", "--listen", "--address",
                             f"127.0.0.1:{args.base_port + 1}", "--secure", "--user", user, str(root)]),
        "atftpd": Server("atftpd", args.base_port + 2,
                         [str(args.atftpd), "--daemon", "--no-fork", "--port", str(args.base_port + 2),
                          "--bind-address", "127.0.0.1", "--user", "nobody", "--group", "nogroup",
                          "--maxthread", "200", "--no-multicast", "--logfile", str(logs / "atftpd.log"),
                          str(root)]),
    }
    return [all_servers[name] for name in args.servers.split(",")]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def running(servers: list[Server], logs: Path, probe: str, cpus: str | None,
            sessions: str = "own") -> Iterator[None]:
    """Start every server in its own process group and cgroup (and session, see ``--sessions``); stop
    exactly those afterwards."""
    root = cgroup_root()
    try:
        for server in servers:
            if root is not None:
                server.cgroup = root / f"nbt-bench-{server.name}"
                server.cgroup.mkdir(exist_ok=True)
            argv = ["taskset", "-c", cpus, *server.argv] if cpus else server.argv
            log = open(logs / f"{server.name}.out", "wb")  # noqa: SIM115 (lives as long as the process)
            own = {"start_new_session": True} if sessions == "own" else {"process_group": 0}
            server.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,  # type: ignore[call-overload]
                                           preexec_fn=_join(server.cgroup), **own)
            if not _answers(server.port, probe):
                raise SystemExit(f"{server.name} does not answer on port {server.port}; see {logs}")
        yield
    finally:
        for server in servers:
            if server.proc is not None:
                _stop(server.proc)
        for server in servers:
            if server.cgroup is not None:
                _remove_cgroup(server.cgroup)


def _join(cgroup: Path | None) -> Callable[[], None] | None:
    """Runs in the child before exec, so everything the server forks is counted from the start."""
    if cgroup is None:
        return None
    procs = cgroup / "cgroup.procs"
    return lambda: procs.write_text(str(os.getpid()))


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir once the last process in it (a tftpd-hpa child finishing a transfer) is gone; bounded."""
    for _ in range(50):
        try:
            cgroup.rmdir()
            return
        except OSError:
            time.sleep(0.1)
    print(f"warning: could not remove {cgroup}", file=sys.stderr)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _answers(port: int, name: str, wait: float = 10.0) -> bool:
    """True once an RRQ on 127.0.0.1:port gets any reply (polled; bounded by ``wait``)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.sendto(b"\x00\x01" + name.encode() + b"\x00octet\x00", ("127.0.0.1", port))
            try:
                _, addr = sock.recvfrom(2048)
                sock.sendto(b"\x00\x05\x00\x00bench probe\x00", addr)
                return True
            except OSError:
                time.sleep(0.1)
    return False


# ----------------------------------------------------------------------------------------- client


def client_argv(args: argparse.Namespace, port: int, name: str, out: str, cell: Cell) -> list[str]:
    argv = [args.atftp, "-g", "-r", name, "-l", out, "--option", f"blksize {cell.blksize}"]
    if cell.windowsize > 1:
        argv += ["--option", f"windowsize {cell.windowsize}"]
    cpus = {"none": None, "same": "0", "split": "1"}[args.pin]
    return [*(["taskset", "-c", cpus] if cpus else []), *argv, "127.0.0.1", str(port)]


def timed_run(args: argparse.Namespace, server: Server, cell: Cell, source: Path,
              scratch: Path | None) -> tuple[float, float | None]:
    """Seconds for ``cell.clients`` simultaneous downloads, and the server's CPU seconds meanwhile.

    Outputs are compared with the source when ``scratch`` is given."""
    outs = [str(scratch / f"out{i}") if scratch else "/dev/null" for i in range(cell.clients)]
    cpu0 = server.cpu_seconds()
    start = time.perf_counter()
    procs = [subprocess.Popen(client_argv(args, server.port, source.name, out, cell),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for out in outs]
    failures = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace").strip()[-200:])
    elapsed = time.perf_counter() - start
    time.sleep(0.05)  # let the server finish its books on the last transfer
    cpu1 = server.cpu_seconds()
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    if failures:
        raise RuntimeError(f"{server.name} {cell}: {len(failures)} client(s) failed: {failures[0]}")
    if scratch:
        want = _digest(source)
        for out in outs:
            if _digest(Path(out)) != want:
                raise RuntimeError(f"{server.name} {cell}: {out} differs from {source}")
            os.unlink(out)
    return elapsed, cpu


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- run


Results = dict[tuple[Cell, str], float | None]


def measure(args: argparse.Namespace, servers: list[Server], cells: list[Cell], root: Path,
            scratch: Path) -> tuple[Results, Results]:
    """Per cell and server: MB/s (10^6 bytes per second, all clients together) and server CPU
    milliseconds per MB, each the median over ``reps``; None when skipped."""
    speed: Results = {}
    cost: Results = {}
    deadline = time.monotonic() + args.budget
    for cell in cells:
        source = root / f"f{cell.size_mib}.bin"
        runs: dict[str, list[tuple[float, float | None]]] = {s.name: [] for s in servers}
        for rep in range(args.reps):
            for server in servers:  # in turn, so slow drifts of the machine hit all servers alike
                if time.monotonic() > deadline:
                    break
                runs[server.name].append(timed_run(args, server, cell, source, scratch if rep == 0 else None))
        total = cell.clients * cell.size_mib * MiB / 1e6
        for server in servers:
            got = runs[server.name]
            speed[(cell, server.name)] = total / statistics.median(t for t, _ in got) if got else None
            cpus = [c for _, c in got if c is not None]
            cost[(cell, server.name)] = statistics.median(cpus) * 1000 / total if cpus else None
        print(_row(cell, servers, speed), flush=True)
    return speed, cost


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def header(servers: list[Server], unit: str = "MB/s") -> str:
    names = [s.name for s in servers]
    cols = ["size MiB", "blksize", "window", "clients", *[f"{n} {unit}" for n in names]]
    if "netboot" in names:
        cols += [f"netboot/{n}" for n in names if n != "netboot"]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def _row(cell: Cell, servers: list[Server], results: Results, *, digits: int = 1,
         inverse: bool = False) -> str:
    """One table row; ratios are netboot/other (or other/netboot for costs, so > 1 is netboot better)."""
    names = [s.name for s in servers]
    vals = [results.get((cell, n)) for n in names]
    cols = [str(cell.size_mib), str(cell.blksize), str(cell.windowsize), str(cell.clients),
            *(_fmt(v, digits) for v in vals)]
    if "netboot" in names:
        mine = results.get((cell, "netboot"))
        for n in names:
            if n != "netboot":
                other = results.get((cell, n))
                cols.append(_ratio(other, mine) if inverse else _ratio(mine, other))
    return "| " + " | ".join(cols) + " |"


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    root, logs = args.work / "root", args.work / "logs"
    root.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    os.chmod(args.work, 0o755)
    os.chmod(root, 0o755)
    sizes = sorted(set(ints(args.sizes)) | set(ints(args.concurrent_sizes)))
    for size in sizes:
        path = root / f"f{size}.bin"
        if not path.exists() or path.stat().st_size != size * MiB:
            path.write_bytes(os.urandom(size * MiB))
        os.chmod(path, 0o644)
    (root / "probe").write_bytes(b"x")
    os.chmod(root / "probe", 0o644)
    cells = [Cell(s, b, w, 1) for s in ints(args.sizes) for b in ints(args.blksizes)
             for w in ints(args.windows)]
    cells += [Cell(s, b, w, args.clients) for s in ints(args.concurrent_sizes) for b in ints(args.blksizes)
              for w in ints(args.windows)]
    servers = make_servers(args, root, logs)
    print(f"# TFTP benchmark: {os.cpu_count()} CPUs, Linux {os.uname().release}, client {args.atftp}, "
          f"median of {args.reps}, MB = 10^6 bytes, CPU placement: {args.pin}, sessions: {args.sessions}",
          flush=True)
    print(f"# command: {os.environ.get('BENCH_CMD') or shlex.join(sys.argv)}", flush=True)
    print(f"# load average at start: {_load()}", flush=True)
    print("\n## Throughput (MB/s; ratio > 1: netboot faster)\n", flush=True)
    print(header(servers), flush=True)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o777)
        placement = {"none": None, "same": "0", "split": "0"}[args.pin]
        with running(servers, logs, "probe", placement, args.sessions):
            _, cost = measure(args, servers, cells, root, scratch)
    print(f"\n# load average at end: {_load()}", flush=True)
    if any(v is not None for v in cost.values()):
        print("\n## Server CPU (ms per MB sent; ratio > 1: netboot cheaper)\n")
        print(header(servers, "ms/MB"))
        for cell in cells:
            print(_row(cell, servers, cost, digits=2, inverse=True))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

"""HTTP benchmark, not a test: netboot against nginx serving the same bytes, in one run, with ratios.

Run by ``bench/http.sh`` (root; it installs wrk and nginx-light). A private lab (tests/netlab.py: a bridge
namespace, a server namespace at .1 and a client namespace at .2) holds netboot (``dhcp: off``) and
nginx side by side in the server namespace, and the load generators in the client namespace; everything
is removed afterwards. Traffic crosses a veth pair, never this machine's own network.

What is measured, each case on netboot, then on nginx, then the ratio ``netboot / nginx``:

* ``wrk`` (``--threads`` threads, ``--connections`` connections, ``--seconds`` s) on the rendered
  ``boot.ipxe?mac=`` of a registered machine, its rendered preseed with its token (asked from the
  machine's own address: the client namespace is the machine), and a 2 KiB file from a profile's
  ``data_dir``. nginx serves the bytes netboot rendered, saved as static files at the same paths.
* one ``curl`` on the Debian installer's initrd and on a 256 MiB file (MB/s), then ``--parallel`` curls at
  once on the initrd and ``--big-parallel`` on the 256 MiB file (seconds until the last one finished).
* HEAD and Range answered correctly by both: status, Content-Length, Content-Range and the bytes.

Repeat with ``--reps``: each repetition runs every case on both servers again, so a noisy neighbour hits
both. The CPU the load generators used is printed, so a saturated client is seen, not mistaken for a
slow server.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from netlab import Lab, Netns, wait_for  # noqa: E402
from nginxconf import nginx_conf  # noqa: E402
from served import NETBOOT, Served, start_netboot  # noqa: E402

DEBIAN = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
MAC = "52:54:00:be:0c:01"
NGINX_PORT = 8081
NETBOOT_PORT = 8080
PROFILE = "bench"


@dataclass
class Case:
    """One URL path served by both, and how it is measured."""

    name: str
    path: str
    kind: str  # "wrk", "one", "parallel"
    clients: int = 1


@dataclass
class Result:
    case: str
    kind: str
    server: str
    value: float  # req/s (wrk), MB/s (one), seconds (parallel)
    errors: int
    client_cpu: float  # seconds of CPU the load generator used


def write_files(data: Path, big_mib: int) -> None:
    """The profile's data_dir: a 2 KiB file, the installer kernel and initrd, a big file."""
    files = data / "debian-installer" / "amd64"
    files.mkdir(parents=True)
    for name in ("linux", "initrd.gz"):
        shutil.copyfile(DEBIAN / name, files / name)
    (data / "small.bin").write_bytes(os.urandom(2048))
    with (data / "big.bin").open("wb") as out:
        for _ in range(big_mib):
            out.write(os.urandom(1 << 20))


def profiles(tmp: Path, data: Path) -> Path:
    root = tmp / "profiles"
    shutil.copytree(ROOT / "profiles", root)
    (root / PROFILE).mkdir()
    (root / PROFILE / "profile.yaml").write_text(
        "description: benchmark profile (debian12-preseed with the files in a temporary data_dir)\n"
        f"parent: debian12-preseed\ndata_dir: {data}\n"
    )
    return root


def nginx_locations() -> str:
    return ("        location = /boot.ipxe { default_type text/plain; }\n"
            "        location /answer/ { default_type text/plain; }")


def wrk(client: Netns, url: str, args: argparse.Namespace) -> tuple[float, int, float]:
    """(requests/s, non-2xx responses + socket errors, client CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = client.run("wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.seconds}s",
                     url, timeout=args.seconds + 60).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise SystemExit(f"wrk printed no rate for {url}:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return float(rate.group(1)), errors, cpu(before, after)


def cpu(before: resource.struct_rusage, after: resource.struct_rusage) -> float:
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def curl_one(client: Netns, url: str) -> tuple[float, int, float]:
    """(MB/s of one download, errors, client CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = client.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{speed_download}", url,
                     timeout=600, check=False).stdout.split()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok = len(out) == 2 and out[0] == "200"
    return (float(out[1]) / 1e6 if ok else 0.0), (0 if ok else 1), cpu(before, after)


def curl_parallel(client: Netns, url: str, clients: int) -> tuple[float, int, float]:
    """(seconds until the last of ``clients`` simultaneous downloads ended, failures, client CPU)."""
    script = (f"for i in $(seq {clients}); do curl -s -o /dev/null -w '%{{http_code}}\\n' '{url}' & done; "
              "wait")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = client.run("sh", "-c", script, timeout=1200, check=False).stdout.split()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, clients - out.count("200"), cpu(before, after)


def check_head_and_range(client: Netns, base: str, path: str, expected: Path) -> list[str]:
    """What the server at ``base`` gets wrong about HEAD and Range on ``path`` (empty: nothing)."""
    problems = []
    size = expected.stat().st_size
    head = client.run("curl", "-s", "-I", f"{base}{path}", timeout=30).stdout
    if not head.startswith("HTTP/1.1 200"):
        problems.append(f"HEAD {path}: {head.splitlines()[:1]}")
    length = re.search(r"(?im)^content-length:\s*(\d+)", head)
    if not length or int(length.group(1)) != size:
        problems.append(f"HEAD {path}: Content-Length {length.group(1) if length else None}, file {size}")
    first, last = 100, min(size, 100 + 65536) - 1
    client.verify()  # the bytes, not text: Netns.run decodes
    ranged = subprocess.run([*client.prefix(), "curl", "-s", "-D", "-", "-r", f"{first}-{last}",
                             f"{base}{path}"], capture_output=True, timeout=60)
    head_end = ranged.stdout.find(b"\r\n\r\n")
    headers, body = ranged.stdout[:head_end].decode(errors="replace"), ranged.stdout[head_end + 4:]
    if not headers.startswith("HTTP/1.1 206"):
        problems.append(f"Range {path}: {headers.splitlines()[:1]}")
    if f"bytes {first}-{last}/{size}" not in headers:
        problems.append(f"Range {path}: no Content-Range bytes {first}-{last}/{size}")
    with expected.open("rb") as f:
        f.seek(first)
        if body != f.read(last - first + 1):
            problems.append(f"Range {path}: the bytes differ from the file's")
    return problems


def teach_and_save(client: Netns, served: Served, docroot: Path) -> tuple[str, str]:
    """Fetch the boot script from the machine's address (so netboot binds its token to that address),
    then its preseed; save both where nginx serves them. Returns both URL paths."""
    script_path = f"/boot.ipxe?mac={MAC}"
    script = client.run("curl", "-fsS", f"{served.http}{script_path}", timeout=30).stdout
    found = re.search(r"url=(http://\S+/answer/\S+?)(?:\s|$)", script)
    if found is None:
        raise SystemExit(f"no preseed URL in the boot script:\n{script}")
    answer_path = "/" + found.group(1).split("/", 3)[3]
    answer = client.run("curl", "-fsS", found.group(1), timeout=30).stdout
    (docroot / "boot.ipxe").write_text(script)
    target = docroot / answer_path.split("?", 1)[0].lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text(answer)
    return script_path, answer_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per case and server")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--parallel", type=int, default=100, help="simultaneous curls on the initrd")
    ap.add_argument("--big-parallel", type=int, default=8, help="simultaneous curls on the big file")
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: bench/http.sh installs it")
    results: list[Result] = []
    problems: list[str] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="nb-http-bench-") as tmpname:
        tmp = Path(tmpname)
        srv, client = lab.host("srv", 1), lab.host("cli", 2)
        data = tmp / "data"
        write_files(data, args.big_mib)
        config = f"profiles-dir: {profiles(tmp, data)}\ndhcp:\n  mode: \"off\"\nservices: {{tftp: false}}\n"
        served = start_netboot(lab, srv, tmp / "netboot", config=config, http_port=NETBOOT_PORT)
        subprocess.run([NETBOOT, "system", "add", MAC, "--profile", PROFILE, "--data-dir", str(served.data),
                        "--config", str(tmp / "netboot" / "netboot.yaml")],
                       check=True, capture_output=True, timeout=60)
        docroot = tmp / "nginx-root"
        (docroot / "files").mkdir(parents=True)
        os.symlink(data, docroot / "files" / PROFILE)
        script_path, answer_path = teach_and_save(client, served, docroot)
        conf = nginx_conf(tmp, f"{lab.ip(1)}:{NGINX_PORT}", docroot, nginx_locations())
        srv.run("nginx", "-c", str(conf), "-g", "daemon on;", timeout=30)
        try:
            wait_for(lambda: client.run("curl", "-fsS", "-o", "/dev/null",
                                        f"http://{lab.ip(1)}:{NGINX_PORT}/boot.ipxe", check=False).returncode
                     == 0, 10, what="nginx")
            bases = {"netboot": served.http, "nginx": f"http://{lab.ip(1)}:{NGINX_PORT}"}
            # the same bytes from both, or the comparison means nothing
            for path in (script_path, answer_path, f"/files/{PROFILE}/small.bin"):
                digests = {client.run("sh", "-c", f"curl -fsS '{base}{path}' | sha256sum", timeout=30).stdout
                           for base in bases.values()}
                if len(digests) != 1:
                    problems.append(f"{path}: netboot and nginx serve different bytes")
            for name, base in bases.items():
                for rel in ("small.bin", "debian-installer/amd64/initrd.gz", "big.bin"):
                    problems += [f"{name}: {p}" for p in
                                 check_head_and_range(client, base, f"/files/{PROFILE}/{rel}", data / rel)]
            cases = [
                Case("boot.ipxe (rendered)", script_path, "wrk"),
                Case("preseed with token (rendered)", answer_path, "wrk"),
                Case("2 KiB static file", f"/files/{PROFILE}/small.bin", "wrk"),
                Case("initrd, 1 client", f"/files/{PROFILE}/debian-installer/amd64/initrd.gz", "one"),
                Case(f"{args.big_mib} MiB, 1 client", f"/files/{PROFILE}/big.bin", "one"),
                Case(f"initrd, {args.parallel} clients at once",
                     f"/files/{PROFILE}/debian-installer/amd64/initrd.gz", "parallel", args.parallel),
                Case(f"{args.big_mib} MiB, {args.big_parallel} clients at once", f"/files/{PROFILE}/big.bin",
                     "parallel", args.big_parallel),
            ]
            for rep in range(args.reps):
                for case in cases:
                    for name, base in bases.items():
                        url = base + case.path
                        if case.kind == "wrk":
                            value, errors, used = wrk(client, url, args)
                        elif case.kind == "one":
                            value, errors, used = curl_one(client, url)
                        else:
                            value, errors, used = curl_parallel(client, url, case.clients)
                        results.append(Result(case.name, case.kind, name, value, errors, used))
                        print(f"rep {rep + 1} {case.name:34} {name:8} {value:10.2f} errors={errors} "
                              f"client-cpu={used:.1f}s", flush=True)
        finally:
            pid = (tmp / "nginx.pid").read_text().strip() if (tmp / "nginx.pid").exists() else ""
            if pid:
                srv.run("kill", pid, check=False)
            served.stop()
    table = report(results)
    print(table)
    for problem in problems:
        print("PROBLEM:", problem)
    if args.out:
        args.out.write_text(table)
    return 1 if problems or any(r.errors for r in results) else 0


UNITS = {"wrk": "req/s", "one": "MB/s", "parallel": "s, all done"}


def report(results: list[Result]) -> str:
    """A Markdown table: per case the median over repetitions of each server, and netboot / nginx
    (for times, nginx / netboot, so that above 1 always means netboot is faster)."""
    lines = ["| case | unit | netboot | nginx | netboot/nginx | errors | client CPU s (netboot, nginx) |",
             "|---|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r.case for r in results):
        mine = [r for r in results if r.case == case and r.server == "netboot"]
        theirs = [r for r in results if r.case == case and r.server == "nginx"]
        unit = UNITS[mine[0].kind]
        a, b = median([r.value for r in mine]), median([r.value for r in theirs])
        ratio = (b / a if a else 0.0) if unit.startswith("s") else (a / b if b else 0.0)
        used = f"{median([r.client_cpu for r in mine]):.1f}, {median([r.client_cpu for r in theirs]):.1f}"
        lines.append(f"| {case} | {unit} | {a:.1f} | {b:.1f} | {ratio:.3f} | "
                     f"{sum(r.errors for r in mine + theirs)} | {used} |")
    return "\n".join(lines) + "\n"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


if __name__ == "__main__":
    raise SystemExit(main())

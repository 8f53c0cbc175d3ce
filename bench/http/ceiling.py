"""HTTP server ceiling, not a test: what a WSGI server costs per request before the app does anything.

Run by ``bench/http-ceiling.sh`` (root). One private lab (tests/netlab.py: a server namespace at .1, a
client at .2), and in the server namespace, one after the other on its own port:

* ``nginx``: the same 607 bytes as a static file (the reference);
* ``waitress``: netboot's own transport (:class:`netboot.servers.http.HttpServer`, waitress with the
  daemon's limits) serving a WSGI app that only returns those bytes;
* ``waitress-netboot``: the same transport serving netboot's real app over a registered machine (the
  rendered ``boot.ipxe`` as ``bench/http.sh`` asks it);
* ``granian`` and ``granian-netboot``: granian (a Rust HTTP server, one worker, one Python thread) serving
  the same two apps (only when granian is importable: ``bench/http-ceiling.sh`` installs it in the venv).

``wrk`` asks each with 1 and then ``--connections`` connections for ``--seconds`` s; the table gives
requests/s, the ratio to nginx, and for the servers that run in the process it starts the CPU per
request. What it answers: how far netboot's machine routes can get on each server, so that the choice of
server is measured, not guessed (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from netlab import Lab, Netns, wait_for  # noqa: E402
from nginxconf import nginx_conf  # noqa: E402

BODY = b"#!ipxe\n" + b"x" * 600
MAC = "52:54:00:be:0c:01"
PATH = f"/boot.ipxe?mac={MAC}"
SERVERS = ("nginx", "waitress", "waitress-netboot", "granian", "granian-netboot")


def serve(kind: str, port: int) -> None:
    """In the server namespace (``--serve``): serve ``kind`` on ``port`` until killed."""
    app: Any = trivial
    if kind.endswith("-netboot"):
        app = netboot_app(Path(tempfile.mkdtemp(prefix="nb-ceiling-")))
    if kind.startswith("granian"):
        import types

        from granian import Granian
        from granian.constants import Interfaces

        module = types.ModuleType("nb_ceiling_app")
        setattr(module, "app", app)  # noqa: B010 (a module made here, for granian to import by name)
        sys.modules["nb_ceiling_app"] = module
        Granian("nb_ceiling_app:app", address="0.0.0.0", port=port, interface=Interfaces.WSGI, workers=1,
                blocking_threads=1).serve()
        return
    from netboot.servers.http import HttpServer

    HttpServer(app, "0.0.0.0", port).serve_forever()


def trivial(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def netboot_app(data: Path) -> Any:
    """netboot's web app over a fresh data directory, the sample profiles and one registered machine."""
    from ipaddress import IPv4Address

    from netboot.config import Config
    from netboot.config.model import DhcpConfig
    from netboot.inventory import System, SystemState
    from netboot.logutil import setup_logging
    from netboot.mac import MacAddress
    from netboot.runtime import build_runtime
    from netboot.webapp import create_app

    setup_logging("WARNING")
    runtime = build_runtime(Config(data_dir=data, profiles_dir=ROOT / "profiles", dhcp=DhcpConfig(mode="off"),
                                   server_ip=IPv4Address("10.0.0.1")))
    runtime.store.systems.add(System(mac=MacAddress.parse(MAC), profile="debian12-preseed",
                                     state=SystemState.INSTALL, token="t" * 32))
    runtime.watch_profiles()
    return create_app(runtime)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(client: Netns, url: str, connections: int, seconds: int) -> float:
    out = client.run("wrk", "-t", "2" if connections > 1 else "1", "-c", str(connections), "-d",
                     f"{seconds}s", url, timeout=seconds + 60).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None or "Non-2xx" in out:
        raise SystemExit(f"wrk on {url}:\n{out}")
    return float(found.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    kinds = [k for k in args.servers.split(",") if k]
    try:
        import granian  # noqa: F401
    except ImportError:
        kinds = [k for k in kinds if not k.startswith("granian")]
        print("granian is not installed: its rows are left out (bench/http-ceiling.sh installs it)")
    rows: list[tuple[str, int, float, float | None]] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="nb-ceiling-") as tmpname:
        tmp = Path(tmpname)
        srv, client = lab.host("srv", 1), lab.host("cli", 2)
        for index, kind in enumerate(kinds):
            port = 8090 + index
            if kind == "nginx":
                docroot = tmp / "root"
                docroot.mkdir()
                (docroot / "boot.ipxe").write_bytes(BODY)
                conf = nginx_conf(tmp, f"{lab.ip(1)}:{port}", docroot,
                                  "        location = /boot.ipxe { default_type text/plain; }")
                srv.run("nginx", "-c", str(conf), "-g", "daemon on;", timeout=30)
                pid = None
            else:
                pid = srv.spawn([sys.executable, __file__, "--serve", kind, str(port)],
                                log=tmp / f"{kind}.log").pid
            url = f"http://{lab.ip(1)}:{port}{PATH}"
            wait_for(lambda url=url: client.run("curl", "-fsS", "-o", "/dev/null", url,
                                                check=False).returncode == 0, 30, what=kind)
            for connections in (1, args.connections):
                # granian serves from a worker process of its own: only the others' CPU is this process's
                before = cpu_seconds(pid) if pid and not kind.startswith("granian") else None
                rate = wrk(client, url, connections, args.seconds)
                per = None
                if before is not None and pid is not None:
                    per = (cpu_seconds(pid) - before) / (rate * args.seconds)
                rows.append((kind, connections, rate, per))
                print(f"{kind:18} {connections:3} connections {rate:10.0f} req/s"
                      + (f"  {per * 1e6:6.0f} us CPU per request" if per else ""), flush=True)
            if kind == "nginx":
                pidfile = tmp / "nginx.pid"
                if pidfile.exists():
                    srv.run("kill", pidfile.read_text().strip(), check=False)
        srv.stop_all()
    reference = {c: r for k, c, r, _ in rows if k == "nginx"}
    print("\n| server | connections | req/s | / nginx | CPU per request (us) |\n|---|---|---|---|---|")
    for kind, connections, rate, per in rows:
        ratio = f"{rate / reference[connections]:.3f}" if connections in reference else "-"
        print(f"| {kind} | {connections} | {rate:.0f} | {ratio} | {per * 1e6:.0f} |" if per else
              f"| {kind} | {connections} | {rate:.0f} | {ratio} | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

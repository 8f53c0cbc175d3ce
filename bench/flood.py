#!/usr/bin/env python3
"""What a flood of random MACs costs the machines that matter (issue 15): ``bench/flood.py --help``.

In one process, over a fresh data directory and the sample profiles, through the real Flask app and the
real store (SQLite, the configured ``limits``):

1. the registered machine's ``/boot.ipxe`` on a quiet server (``--samples`` requests);
2. the same while ``--flood`` random MACs fetch ``/boot.ipxe`` (the requests of the registered machine
   interleaved among them), then after the flood;
3. the UI's discovered and systems pages with a few discovered machines, then with ``--discovered`` of them
   (written through the group commit, as the DHCP side writes them).

It prints medians and 99th percentiles and the ratios flooded / quiet: a flood that slows the registered
machine's boot or the lists shows as a ratio well above 1. The test client takes no sockets, so what is
measured is netboot's own work per request (the app, the boot core, the store), not the network.
No network traffic at all: safe to run anywhere, as any user.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netboot import registration  # noqa: E402
from netboot.config import Config, LimitsConfig  # noqa: E402
from netboot.mac import MacAddress  # noqa: E402
from netboot.runtime import build_runtime  # noqa: E402
from netboot.webapp import create_app  # noqa: E402

MACHINE = "52:54:00:0f:10:0d"
MACHINE_IP = "127.0.0.1"
ADMIN = ("bench", "bench-password-1")


def random_macs(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    macs: set[str] = set()
    while len(macs) < count:
        macs.add("02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5)))
    return sorted(macs)


def summary(times: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in milliseconds."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(get: object, url: str, **kw: object) -> float:
    start = time.perf_counter()
    resp = get(url, **kw)  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    if resp.status_code != 200:
        raise SystemExit(f"{url}: HTTP {resp.status_code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=10_000, help="random MACs fetching /boot.ipxe (10000)")
    parser.add_argument("--samples", type=int, default=300, help="registered-machine requests per phase")
    parser.add_argument("--discovered", type=int, default=10_000, help="discovered machines for the lists")
    parser.add_argument("--pages", type=int, default=50, help="list page loads per phase (50)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nb-flood-") as tmp:
        limits = LimitsConfig(discovered_max=max(args.discovered, 10_000))
        cfg = Config(data_dir=Path(tmp) / "data", profiles_dir=REPO / "profiles",
                     server_ip=IPv4Address("10.0.0.1"), limits=limits)
        rt = build_runtime(cfg)
        try:
            rt.store.users.add(*ADMIN, role="admin")
            system = registration.register(rt, MACHINE, "debian12-preseed", "web1")
            rt.recorder.learn(MACHINE_IP, system.mac)
            app = create_app(rt)
            client = app.test_client()
            mine = {"environ_base": {"REMOTE_ADDR": MACHINE_IP}}
            url = f"/boot.ipxe?mac={MACHINE}"
            for _ in range(20):  # warm up templates and caches
                timed(client.get, url, **mine)

            quiet = [timed(client.get, url, **mine) for _ in range(args.samples)]
            flooded: list[float] = []
            every = max(1, args.flood // args.samples)
            start = time.perf_counter()
            for i, mac in enumerate(random_macs(args.flood, seed=15)):
                flooder = {"REMOTE_ADDR": f"10.9.{i % 250}.{i % 200 + 1}"}
                client.get(f"/boot.ipxe?mac={mac}", environ_base=flooder)
                if i % every == 0:
                    flooded.append(timed(client.get, url, **mine))
            flood_rate = args.flood / (time.perf_counter() - start)
            rt.store.events.wait_idle(30)
            after = [timed(client.get, url, **mine) for _ in range(args.samples)]

            session = app.test_client()
            form = session.get("/ui/login").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            login = {"name": ADMIN[0], "password": ADMIN[1], "csrf_token": csrf.group(1) if csrf else ""}
            if session.post("/ui/login", data=login).status_code != 302:
                raise SystemExit("could not sign in to the UI")
            pages = ("/ui/discovered", "/ui/systems")
            few = {p: [timed(session.get, p) for _ in range(args.pages)] for p in pages}
            seen = random_macs(args.discovered, seed=17)
            for n, mac in enumerate(seen):
                rt.store.stage_seen(MacAddress.parse(mac), arch="bios", uuid=None, now=time.time() - n)
                if n % 500 == 499:
                    rt.store.flush()
            rt.store.flush()
            many = {p: [timed(session.get, p) for _ in range(args.pages)] for p in pages}
        finally:
            rt.close()

    print(f"flood: {args.flood} random MACs through /boot.ipxe at {flood_rate:.0f} req/s (one client)")
    q50, _ = summary(quiet)
    print(f"{'registered machine /boot.ipxe':<40} {'median ms':>10} {'p99 ms':>8} {'ratio':>7}")
    for name, times in (("quiet", quiet), ("during the flood", flooded), ("after the flood", after)):
        m50, m99 = summary(times)
        print(f"  {name:<38} {m50:>10.2f} {m99:>8.2f} {m50 / q50:>7.2f}")
    print(f"{'list pages':<40} {'median ms':>10} {'p99 ms':>8} {'ratio':>7}")
    for page in pages:
        f50, _ = summary(few[page])
        for name, times in ((f"{page}, few discovered", few[page]),
                            (f"{page}, {args.discovered} discovered", many[page])):
            m50, m99 = summary(times)
            print(f"  {name:<38} {m50:>10.2f} {m99:>8.2f} {m50 / f50:>7.2f}")


if __name__ == "__main__":
    main()

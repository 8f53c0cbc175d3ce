"""What the QEMU tests share: the netboot CLI against a served data dir, a machine's events, and the
serial console read with its terminal escapes taken out."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from netlab import Lab, Netns, wait_for
from served import NETBOOT, Served

#: terminal control sequences (cursor moves, colours, clear screen) and backspaces on the console
ESCAPES = re.compile(rb"\x1b\[[0-9;=?]*[A-Za-z]|\x08")


def install_network(lab: Lab) -> str:
    """netboot.yaml for a typical install network: netboot leases .100-.120 and is the network's router
    and name server (d-i asks interactively for both when DHCP gives neither)."""
    return (f"dhcp:\n  mode: full\n  subnet: {lab.net}.0/24\n  range: {lab.ip(100)}-{lab.ip(120)}\n"
            f"  router: {lab.ip(1)}\n  dns-servers: [{lab.ip(1)}]\n  domain: lab.test\n"
            "dns:\n  enabled: true\n  domain: lab.test\n")


@contextmanager
def as_machine(lab: Lab, ns: Netns, mac: str, address: str) -> Iterator[None]:
    """``ns`` plays a stopped VM: it takes the VM's MAC and address over (the server's ARP entry for the
    address names that MAC), so what it sends is what the VM's installer would send; both go back after."""
    own_mac = lab.mac_of(ns)
    ns.run("ip", "link", "set", "eth0", "address", mac)
    ns.run("ip", "addr", "add", f"{address}/24", "dev", "eth0")
    try:
        yield
    finally:
        ns.run("ip", "addr", "del", f"{address}/24", "dev", "eth0")
        ns.run("ip", "link", "set", "eth0", "address", own_mac)


def cli(served: Served, *args: str) -> str:
    """``netboot ARGS --data-dir <served's>``: its stdout; a failure raises with its stderr."""
    return subprocess.run([NETBOOT, *args, "--data-dir", str(served.data)], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def system(served: Served, mac: str) -> dict[str, object]:
    """``netboot system show MAC --json`` with its last 500 events."""
    result: dict[str, object] = json.loads(cli(served, "system", "show", mac, "--json", "--events", "500"))
    return result


def events(served: Served, mac: str) -> list[dict[str, object]]:
    """The machine's events, oldest first (``system show``'s ``events``)."""
    shown: list[dict[str, object]] = json.loads(
        cli(served, "system", "show", mac, "--json", "--events", "500"))["events"]
    return shown


def phases(served: Served, mac: str) -> list[str]:
    return [str(e["phase"]) for e in events(served, mac)]


@dataclass
class Console:
    """The serial log, with the time each awaited text first appeared in it (seconds from ``started``).

    Texts are looked for with the terminal escapes taken out: sgabios copies the BIOS screen to the serial
    port one character at a time, each behind a cursor move, and OVMF draws its screens with escapes.
    """

    path: Path
    started: float
    seen_at: dict[str, float] = field(default_factory=dict)

    def wait(self, texts: list[str], timeout: float) -> None:
        """Until the last of ``texts`` appears; notes when each one first did."""
        def done() -> bool:
            data = self.text()
            for text in texts:
                if text not in self.seen_at and text in data:
                    self.seen_at[text] = time.monotonic() - self.started
            return texts[-1] in self.seen_at

        wait_for(done, timeout, interval=0.2, what=f"{texts[-1]!r} on the serial console")

    def text(self) -> str:
        raw = self.path.read_bytes() if self.path.exists() else b""
        return ESCAPES.sub(b"", raw).decode(errors="replace")

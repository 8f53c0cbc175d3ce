"""Private test networks: network namespaces joined by a bridge, created and removed by each test.

Safety rule (project-wide): a DHCP server or client only ever runs inside a namespace made here. Every
command goes through :meth:`Netns.cmd`, which runs ``ip netns exec NAME`` and refuses to start anything
unless ``ip netns identify`` inside confirms the namespace. Nothing here has a route off the bridge.

Layout::

    ns <id>-br : bridge br0 ──veth── ns <id>-<host>: eth0 10.x.y.N/24
                            ──tap── (QEMU VMs, when asked)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else "python3"


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


class NetnsError(RuntimeError):
    pass


@dataclass
class Netns:
    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def verify(self) -> None:
        """Refuse to run anything unless the namespace really is ours (``ip netns identify``)."""
        out = sh(*self.prefix(), "sh", "-c", "ip netns identify $$").stdout.strip()
        if out != self.name:
            raise NetnsError(f"refusing to run: 'ip netns identify' says {out!r}, expected {self.name!r}")

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.verify()
        return sh(*self.prefix(), *args, check=check, timeout=timeout)

    def spawn(
        self, args: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in the namespace; it is killed (by PID) at cleanup."""
        self.verify()
        out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            [*self.prefix(), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc)
        self.procs.clear()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5) -> None:
    """Stop one process we started (its own session), escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def kill_namespace_pids(name: str) -> None:
    """Kill what is left inside a namespace we created (e.g. a dhclient that daemonised)."""
    pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


class Lab:
    """A bridge namespace plus host namespaces on one /24. Use as a context manager."""

    def __init__(self, subnet_octet: int | None = None) -> None:
        if os.geteuid() != 0:
            raise NetnsError("network namespace tests need root (run them through `make test`)")
        self.id = "nb" + secrets.token_hex(3)
        third = subnet_octet if subnet_octet is not None else 100 + secrets.randbelow(150)
        self.net = f"10.231.{third}"
        self.bridge = Netns(f"{self.id}-br")
        self.hosts: dict[str, Netns] = {}
        self._taps: list[str] = []
        self._count = 0

    def __enter__(self) -> Lab:
        sh("ip", "netns", "add", self.bridge.name)
        self.bridge.run("ip", "link", "add", "br0", "type", "bridge")
        self.bridge.run("ip", "link", "set", "br0", "type", "bridge", "forward_delay", "0")
        self.bridge.run("ip", "link", "set", "br0", "up")
        self.bridge.run("ip", "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, name: str, address: int | None = None) -> Netns:
        """A namespace with ``eth0`` on the bridge; ``address`` N gives it 10.231.x.N/24."""
        self._count += 1
        ns = Netns(f"{self.id}-{name}")
        sh("ip", "netns", "add", ns.name)
        self.hosts[name] = ns
        port = f"v{self.id[2:]}{self._count}"
        sh(
            "ip",
            "-n",
            self.bridge.name,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name,
        )
        self.bridge.run("ip", "link", "set", port, "master", "br0")
        self.bridge.run("ip", "link", "set", port, "up")
        ns.run("ip", "link", "set", "lo", "up")
        ns.run("ip", "link", "set", "eth0", "up")
        if address is not None:
            ns.run("ip", "addr", "add", f"{self.net}.{address}/24", "dev", "eth0")
        return ns

    def mac_of(self, ns: Netns, dev: str = "eth0") -> str:
        return ns.run("cat", f"/sys/class/net/{dev}/address").stdout.strip()

    def tap(self) -> str:
        """A tap device on the bridge (in the bridge namespace) for a QEMU VM."""
        name = f"t{self.id[2:]}{len(self._taps)}"
        self.bridge.run("ip", "tuntap", "add", name, "mode", "tap")
        self.bridge.run("ip", "link", "set", name, "master", "br0")
        self.bridge.run("ip", "link", "set", name, "up")
        self._taps.append(name)
        return name

    def ip(self, n: int) -> str:
        return f"{self.net}.{n}"

    def close(self) -> None:
        for ns in [*self.hosts.values(), self.bridge]:
            ns.stop_all()
        for ns in [*self.hosts.values(), self.bridge]:
            kill_namespace_pids(ns.name)
            sh("ip", "netns", "del", ns.name, check=False)
        self.hosts.clear()


def wait_for(predicate: object, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_log(path: Path, text: str, timeout: float) -> str:
    def found() -> bool:
        return path.exists() and text in path.read_text(errors="replace")

    wait_for(found, timeout, what=f"{text!r} in {path}")
    return path.read_text(errors="replace")


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


def quote(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)

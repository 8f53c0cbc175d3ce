"""The lab's network namespaces: created, checked and removed only through here.

Safety rule (project-wide): DHCP servers and clients and QEMU run only inside namespaces the lab created.
Before anything is started inside one, :meth:`Namespace.verify` asks ``ip netns identify`` from inside
and refuses unless it names the namespace. Nothing here adds a route or a link to the host's interfaces.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

NETNS_DIR = "/run/netns"


class NetnsError(RuntimeError):
    """A namespace command failed; the message names the command and what ``ip`` said."""


def run(args: Sequence[str], *, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NetnsError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from None
    except FileNotFoundError:
        raise NetnsError(f"`{args[0]}` is not installed") from None
    if check and result.returncode != 0:
        raise NetnsError(f"`{' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result


def list_names() -> list[str]:
    """Names of the existing network namespaces (``ip netns list``)."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def exists(name: str) -> bool:
    return name in list_names()


@dataclass(frozen=True)
class Namespace:
    name: str

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def create(self) -> None:
        run(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        self.verify()

    def verify(self) -> None:
        """Refuse to go on unless ``ip netns identify`` run inside names this namespace."""
        out = run([*self.prefix(), "sh", "-c", "ip netns identify $$"]).stdout.strip()
        if out != self.name:
            raise NetnsError(
                f"refusing to start anything: `ip netns identify` inside {self.name!r} says {out!r}"
            )

    def ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n NAME ...``: configure the namespace from outside."""
        return run(["ip", "-n", self.name, *args])

    def exec(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a short command inside (after :meth:`verify`)."""
        self.verify()
        return run([*self.prefix(), *args], timeout=timeout, check=check)

    def pids(self) -> list[int]:
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def delete(self) -> None:
        run(["ip", "netns", "del", self.name], check=False)

    def links(self) -> list[str]:
        """Interface names inside (``ip -n NAME -o link``)."""
        out = run(["ip", "-n", self.name, "-o", "link", "show"], check=False).stdout
        names = []
        for line in out.splitlines():
            parts = line.split(":", 2)
            if len(parts) >= 2:
                names.append(parts[1].strip().split("@")[0])
        return names

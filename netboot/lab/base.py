"""What every part of the lab shares: its addresses and names, its error, where its state lives.

The lab's layout is described in :mod:`netboot.lab.core`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from netboot.lab import procs
from netboot.lab.netns import exists as netns_exists
from netboot.lab.progress import Files
from netboot.lab.state import STATE_FILE, LabState

NET = "10.99.0"
SERVER_IP = f"{NET}.1"
DHCP_SERVER_IP = f"{NET}.2"
RANGE = (f"{NET}.100", f"{NET}.199")
BRIDGE = "br0"
MIRROR_PORT = 3142
MAC_PREFIX = "52:54:00:4e:42"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
MAX_VMS = 16

Say = Callable[[str], None]


class LabError(Exception):
    """A lab command could not do what was asked. ``status`` 2 = bad input, 1 = failure."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UpOptions:
    name: str = "netboot-lab"
    vms: int = 1
    firmware: str = "bios"
    profile: str = "debian12-preseed"
    proxy: bool = False
    #: ``dhcp``, ``script``, ``answer`` or ``done``; None = ``done`` with a mirror, else ``answer``
    until: str | None = None
    timeout: float = 1200.0
    memory_mb: int = 1024
    disk_gb: int = 8
    accel: str = "auto"
    #: host loopback port forwarded to the UI inside the lab; 0 = none
    ui_port: int = 8099
    http_port: int = 8080
    mirror_dir: Path | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


def lab_root(data_dir: Path, name: str) -> Path:
    return data_dir / "lab" / name


def default_profiles_dir() -> Path:
    """The sample profiles: the repository's ``profiles/`` (a source checkout) or /usr/share/netboot."""
    here = Path(__file__).resolve().parent.parent.parent / "profiles"
    return here if here.is_dir() else Path("/usr/share/netboot/profiles")


def python_argv() -> list[str]:
    return [sys.executable]


def netboot_argv() -> list[str]:
    """How to run ``netboot`` (the console script next to this Python, else the module)."""
    script = Path(sys.executable).parent / "netboot"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "netboot.cli"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETBOOT_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mac_of(index: int) -> str:
    return f"{MAC_PREFIX}:{index:02x}"


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise LabError(
            f"--name {name!r}: use 1-24 lowercase letters, digits and '-', starting with a letter", 2
        )


def check_root() -> None:
    if os.geteuid() != 0:
        raise LabError("netboot lab needs root: it creates a network namespace, a bridge and tap devices", 2)


def load_state(root: Path) -> LabState | None:
    """The lab recorded in ``root``, None when there is none; unreadable state is an error, not "none"."""
    path = root / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabState.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(
            f"{path}: unreadable lab state ({exc}); remove it by hand after checking `ip netns list`"
        ) from None


def is_alive(state: LabState) -> bool:
    """A lab is up while its namespace exists and one of its processes still runs."""
    return any(netns_exists(n) for n in state.namespaces[:1]) and any(procs.alive(p) for p in state.procs)


def files_of(state: LabState) -> Files:
    """What the lab's VMs download (kernel, initrds, total bytes), as recorded when it was built."""
    return Files(frozenset(state.kernel_names), frozenset(state.initrd_names), state.download_bytes)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a process's log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty)"

"""Per-VM progress from netboot's own records: the ``events`` table, plus TCP counters for downloads.

Stages, in boot order: DHCP, loader (TFTP or HTTP), boot script, kernel, initrd, installer (the booted
installer's own DHCP request, when netboot is the DHCP server), answer file, install done. A later stage
implies the earlier ones (BIOS VMs in QEMU never fetch a loader: their NIC ROM is already iPXE; in proxy
mode the installer's DHCP goes to dnsmasq only). Download progress comes from ``ss`` inside the lab
namespace: the bytes the guest has acknowledged on its HTTP connections to netboot, against the size of the
profile's kernel and initrds.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from netboot.boot.urls import LOADER_PREFIX

STAGES = ("dhcp", "loader", "script", "kernel", "initrd", "installer", "answer", "done")
LABELS = {
    "dhcp": "DHCP",
    "loader": "loader",
    "script": "boot script",
    "kernel": "kernel",
    "initrd": "initrd",
    "installer": "installer",
    "answer": "answer file",
    "done": "install done",
}
#: ``--until`` choices and the stage each one waits for
UNTIL = {"dhcp": "dhcp", "script": "script", "answer": "answer", "done": "done"}
LOADER_FILES = frozenset(
    {
        "undionly.kpxe",
        "undionly.kkpxe",
        "ipxe.pxe",
        "ipxe.efi",
        "snponly.efi",
        "snp.efi",
        "grubx64.efi",
        "bootx64.efi",
        "shimx64.efi",
        "pxelinux.0",
        "lpxelinux.0",
    }
)


@dataclass(frozen=True)
class Row:
    id: int
    time: float
    mac: str | None
    client_ip: str | None
    phase: str
    summary: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Files:
    """What the profile's boot script downloads (base names) and the total size when known locally."""

    kernel: frozenset[str] = frozenset()
    initrds: frozenset[str] = frozenset()
    total_bytes: int | None = None


def stage_of(row: Row, files: Files) -> str | None:
    """The stage an event shows, or None when it is not a progress step."""
    phase = row.phase
    if phase == "dhcp":
        return "dhcp"
    if phase == "boot-script":
        return "script"
    if phase == "answer-file":
        return "answer"
    if phase == "install-done":
        return "done"
    path = str(row.detail.get("file") or row.detail.get("path") or "")
    name = PurePosixPath(path.split("?", 1)[0]).name
    if phase == "tftp":
        ok = row.detail.get("outcome", "complete") == "complete"
        return "loader" if ok and name in LOADER_FILES else None
    if phase == "http":
        if path.startswith(LOADER_PREFIX) or name in LOADER_FILES:
            return "loader"
        if name in files.kernel:
            return "kernel"
        if name in files.initrds:
            return "initrd"
    return None


@dataclass
class VmProgress:
    name: str
    mac: str  # 12 lowercase hex digits, as in the events table
    hostname: str
    reached: dict[str, float] = field(default_factory=dict)
    ip: str | None = None
    note: str | None = None
    #: bytes acknowledged per TCP connection (peer port) since the boot script
    acked: dict[int, int] = field(default_factory=dict)
    #: when the acknowledged byte count last grew
    last_growth: float = 0.0

    def loaded(self, now: float) -> bool:
        """Kernel and initrd requested, and nothing more arrived for two seconds: the downloads are over."""
        return self.has("initrd") and self.downloaded > 0 and now - self.last_growth > 2.0

    @property
    def stage(self) -> str | None:
        """The furthest stage reached."""
        done = [s for s in STAGES if s in self.reached]
        return done[-1] if done else None

    def has(self, stage: str) -> bool:
        """Reached ``stage`` or any later one."""
        here = self.stage
        return here is not None and STAGES.index(here) >= STAGES.index(stage)

    @property
    def downloaded(self) -> int:
        return sum(self.acked.values())


def _mac_hex(mac: str) -> str:
    return re.sub(r"[^0-9a-f]", "", mac.lower())


class Tracker:
    """Follows the events table of one netboot database for a set of VMs."""

    def __init__(self, db: Path, vms: Iterable[tuple[str, str, str]], files: Files) -> None:
        self.db = db
        self.files = files
        self.vms = {_mac_hex(mac): VmProgress(name, _mac_hex(mac), host) for name, mac, host in vms}
        self._last_id = 0
        self._by_ip: dict[str, VmProgress] = {}

    def rows(self) -> list[Row]:
        if not self.db.exists():
            return []
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return []
        try:
            cur = conn.execute(
                "SELECT id, time, mac, client_ip, phase, summary, detail FROM events "
                "WHERE id > ? ORDER BY id LIMIT 2000",
                (self._last_id,),
            )
            out = []
            for rid, t, mac, ip, phase, summary, detail in cur.fetchall():
                try:
                    parsed = json.loads(detail) if isinstance(detail, str) else (detail or {})
                except ValueError:
                    parsed = {}
                out.append(Row(rid, t, mac, ip, phase, summary, parsed if isinstance(parsed, dict) else {}))
        except sqlite3.Error:  # the table is not there yet
            return []
        finally:
            conn.close()
        if out:
            self._last_id = out[-1].id
        return out

    def poll(self) -> list[tuple[VmProgress, str, Row]]:
        """Read new events; return the (vm, stage, event) steps reached for the first time."""
        steps = []
        for row in self.rows():
            vm = self.vms.get(row.mac or "") or self._by_ip.get(row.client_ip or "")
            if vm is None:
                continue
            # the VM's address: from its DHCP lease; else from its first request that names its MAC
            ip = row.detail.get("ip") if row.phase == "dhcp" else None
            if ip is None and vm.ip is None and row.phase == "boot-script":
                ip = row.client_ip
            if isinstance(ip, str) and ip and ip != "0.0.0.0" and row.mac:
                vm.ip = ip
                self._by_ip[ip] = vm
            if row.phase == "boot-script" and row.detail.get("decision") not in (None, "install"):
                vm.note = f"netboot answered {row.detail.get('decision')!s}: {row.summary}"
            stage = stage_of(row, self.files)
            if stage == "dhcp" and vm.has("script"):
                stage = "installer"  # DHCP again after the boot script: the installer is up
            if stage is not None and stage not in vm.reached:
                vm.reached[stage] = row.time
                steps.append((vm, stage, row))
        return steps

    def learn_ip(self, ip: str, mac: str) -> None:
        """Map an address to a VM from outside the events (dnsmasq's lease file in proxy mode)."""
        vm = self.vms.get(_mac_hex(mac))
        if vm is not None:
            if vm.ip is None:
                vm.ip = ip
            self._by_ip[ip] = vm

    def mark(self, mac: str, stage: str, when: float, summary: str) -> tuple[VmProgress, str, Row] | None:
        """Record a stage seen outside netboot's events (dnsmasq's log in proxy mode); the step if new."""
        vm = self.vms.get(_mac_hex(mac))
        if vm is None or stage in vm.reached:
            return None
        vm.reached[stage] = when
        return vm, stage, Row(0, when, vm.mac, vm.ip, "dhcp", summary, {})

    def downloading(self) -> list[VmProgress]:
        """VMs between their boot script and their answer file: the ones whose downloads to watch."""
        return [vm for vm in self.vms.values() if vm.has("script") and not vm.has("answer") and vm.ip]

    def update_downloads(self, counters: Mapping[str, Mapping[int, int]], now: float) -> None:
        """``counters``: peer IP -> {peer port: bytes acked} for connections to netboot's HTTP port."""
        for vm in self.downloading():
            before = vm.downloaded
            for port, acked in counters.get(vm.ip or "", {}).items():
                vm.acked[port] = max(acked, vm.acked.get(port, 0))
            if vm.downloaded > before:
                vm.last_growth = now

    def all_reached(self, stage: str) -> bool:
        return all(vm.has(stage) for vm in self.vms.values())


_DNSMASQ = re.compile(r"dnsmasq-dhcp\[\d+\]: (\d+) (?:vendor class: (\S+)|DHCPACK\(\S+\) (\S+) (\S+))")


def installer_acks(log_text: str) -> list[tuple[str, str]]:
    """(MAC, IP) of each DHCPACK dnsmasq sent to a Debian installer (vendor class ``d-i``; ``--log-dhcp``)."""
    installer_xids: set[str] = set()
    out = []
    for m in _DNSMASQ.finditer(log_text):
        xid, vendor, ip, mac = m.groups()
        if vendor is not None:
            if vendor == "d-i":
                installer_xids.add(xid)
        elif xid in installer_xids:
            out.append((mac, ip))
    return out


_SOCKET = re.compile(r"^\S*\s*\d+\s+\d+\s+(\S+):(\d+)\s+(\S+):(\d+)")
_ACKED = re.compile(r"\bbytes_acked:(\d+)")


def parse_ss(text: str, server_port: int) -> dict[str, dict[int, int]]:
    """``ss -tinH`` output -> {peer IP: {peer port: bytes_acked}} for connections on ``server_port``."""
    out: dict[str, dict[int, int]] = {}
    current: tuple[str, int] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            m = _SOCKET.match(line)
            current = None
            if m and int(m.group(2)) == server_port:
                current = (m.group(3).strip("[]").removeprefix("::ffff:"), int(m.group(4)))
            continue
        if current is not None:
            acked = _ACKED.search(line)
            if acked:
                out.setdefault(current[0], {})[current[1]] = int(acked.group(1))
            current = None
    return out


# ------------------------------------------------------------------------------------------- display


def bar(fraction: float, width: int = 24) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def download_text(vm: VmProgress, files: Files, now: float) -> str | None:
    """``downloading [####----] 42% 20.6/49.0 MB`` while kernel and initrd come, then what follows."""
    if vm.has("done"):
        return "installed; its next boot is from its own disk"
    if vm.has("answer"):
        return "the installer has its answer file"
    if not vm.has("script"):
        return None
    if vm.has("installer"):
        return "the installer is up (its own DHCP lease); next it fetches its answer file"
    got = vm.downloaded
    total = files.total_bytes
    if vm.loaded(now) or (total and got >= total):
        return "kernel and initrd loaded; the installer is booting (a minute or two under TCG)"
    if total:
        return f"downloading {bar(got / total)} {100 * got // total:3d}% {mb(got)}/{mb(total)} MB"
    return f"downloading {mb(got)} MB" if got else None


class Display:
    """Live per-VM progress: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(
        self,
        tracker: Tracker,
        *,
        started: float,
        tty: bool,
        write: Callable[[str], None],
        unicode: bool = True,
    ) -> None:
        self.tracker = tracker
        self.started = started
        self.tty = tty
        self.write = write
        self.ok = "\u2713" if unicode else "x"
        self.todo = "\u00b7" if unicode else "."
        self._drawn = 0
        self._quarter: dict[str, int] = {}

    def step(self, vm: VmProgress, stage: str, row: Row) -> None:
        if self.tty:
            return
        at = row.time - self.started
        extra = f" ({vm.ip})" if stage == "dhcp" and vm.ip else ""
        self.write(f"[{at:6.1f}s] {vm.name} {vm.hostname}: {LABELS[stage]:<12} {row.summary}{extra}")

    def downloads(self, now: float) -> None:
        """Plain mode: a line at each quarter of the downloads, and one when they are over."""
        if self.tty:
            return
        total = self.tracker.files.total_bytes
        for vm in self.tracker.downloading():
            at = now - self.started
            done = vm.loaded(now) or bool(total and vm.downloaded >= total)
            quarter = 4 if done else min(3, 4 * vm.downloaded // total) if total else 0
            if quarter <= self._quarter.get(vm.name, 0):
                continue
            self._quarter[vm.name] = quarter
            if done:
                self.write(
                    f"[{at:6.1f}s] {vm.name} {vm.hostname}: {'download':<12} kernel and initrd loaded "
                    f"({mb(max(vm.downloaded, total or 0))} MB); the installer is booting"
                )
            elif total:
                self.write(
                    f"[{at:6.1f}s] {vm.name} {vm.hostname}: {'download':<12} "
                    f"{bar(vm.downloaded / total)} {mb(vm.downloaded)}/{mb(total)} MB"
                )

    def lines(self, now: float) -> list[str]:
        out = []
        for vm in self.tracker.vms.values():
            took = clock(now - self.started)
            head = f"  {vm.name:<5} {vm.hostname:<14} {_colon(vm.mac)}  {vm.ip or '-':<15} {took}"
            marks = "  ".join(f"{self.ok if vm.has(s) else self.todo} {LABELS[s]}" for s in STAGES)
            detail = download_text(vm, self.tracker.files, now) or vm.note or ""
            out += [head, f"        {marks}", f"        {detail}"]
        return out

    def redraw(self, now: float) -> None:
        if not self.tty:
            return
        lines = self.lines(now)
        text = ""
        if self._drawn:
            text += f"\x1b[{self._drawn}F"
        text += "".join(f"\x1b[2K{line}\n" for line in lines)
        self._drawn = len(lines)
        self.write(text.rstrip("\n"))


def _colon(mac_hex: str) -> str:
    return ":".join(mac_hex[i : i + 2] for i in range(0, 12, 2))


def expected_files(kernel: str | None, initrds: Sequence[str], sizes: Sequence[int | None]) -> Files:
    total = None if not sizes or any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
    return Files(
        kernel=frozenset({PurePosixPath(kernel).name} if kernel else set()),
        initrds=frozenset(PurePosixPath(i).name for i in initrds),
        total_bytes=total,
    )

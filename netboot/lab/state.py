"""The lab's record of what it created, kept as JSON in ``<data-dir>/lab/<name>/state.json``.

It is written *before* each thing is created and updated right after, so that whatever happens (an
error, Ctrl-C, a crash) ``netboot lab down`` or the next ``up`` knows exactly what to remove: these
namespaces, these processes (by PID and start time), this directory. Nothing else is ever touched.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netboot.lab.procs import Proc

STATE_FILE = "state.json"
VERSION = 1


@dataclass
class VmRecord:
    name: str
    mac: str
    hostname: str
    tap: str
    firmware: str
    dir: str
    serial_log: str
    serial_socket: str
    qemu_log: str
    disk: str | None = None
    qmp_socket: str | None = None


@dataclass
class LabState:
    name: str
    root: str
    created: float = field(default_factory=time.time)
    #: ``starting`` while ``up`` builds it, ``up`` once everything started
    phase: str = "starting"
    firmware: str = "bios"
    profile: str = ""
    profiles_dir: str = ""
    dhcp: str = "full"
    accel: str = "tcg"
    server_ip: str = ""
    http_port: int = 8080
    ui_url: str | None = None
    #: the lab's own UI account (a throwaway lab: the password is kept here, readable by root only)
    ui_user: str | None = None
    ui_password: str | None = None
    mirror_url: str | None = None
    #: what the profile's boot script downloads: base names, and total bytes when known
    kernel_names: list[str] = field(default_factory=list)
    initrd_names: list[str] = field(default_factory=list)
    download_bytes: int | None = None
    #: namespaces this lab created (the lab's own first)
    namespaces: list[str] = field(default_factory=list)
    #: interfaces created inside the lab namespace (bridge, taps, veth)
    links: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    vms: list[VmRecord] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return Path(self.root)

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def netboot_data(self) -> Path:
        return self.dir / "netboot"

    @property
    def db_path(self) -> Path:
        return self.netboot_data / "netboot.db"

    def proc(self, role: str) -> Proc | None:
        return next((p for p in self.procs if p.role == role), None)

    def vm(self, name: str) -> VmRecord | None:
        return next((v for v in self.vms if v.name == name), None)

    def save(self) -> None:
        """Write atomically (a crash mid-write never leaves half a record)."""
        data: dict[str, Any] = asdict(self)
        data["version"] = VERSION
        data["procs"] = [p.to_json() for p in self.procs]
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> LabState:
        data = json.loads(path.read_text())
        data.pop("version", None)
        procs = [Proc.from_json(p) for p in data.pop("procs", [])]
        vms = [VmRecord(**v) for v in data.pop("vms", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known}, procs=procs, vms=vms)

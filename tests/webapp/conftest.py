"""Fixtures for the machine-facing routes: a runtime over a fresh data dir, its Flask app and test client.

Every test gets its own SQLite database under ``tmp_path``, the server address 10.0.0.1 (so URLs in
scripts do not depend on this host) and a private loaders folder with small fake iPXE binaries (so
``/loaders/`` does not depend on Debian's ``ipxe`` package). Profiles are the repository's samples unless a
test copies them into ``tmp_path`` to break one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import netboot.runtime
from netboot import registration
from netboot.config import Config, LoadersConfig
from netboot.inventory import System
from netboot.mac import MacAddress
from netboot.runtime import Runtime, build_runtime
from netboot.store.events import StoredEvent
from netboot.webapp import create_app

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
SERVER = "10.0.0.1"
BASE = f"http://{SERVER}:8080"
#: the Debian installer's netboot kernel, from the debian-installer-12-netboot-amd64 package
DEBIAN_DATA = Path("/usr/lib/debian-installer/images/12/amd64/text")
DEBIAN_KERNEL = "debian-installer/amd64/linux"
DEBIAN_INITRD = "debian-installer/amd64/initrd.gz"
HAVE_DEBIAN = (DEBIAN_DATA / DEBIAN_KERNEL).is_file()
#: a registered system, a second one, and a MAC never registered
MAC = "52:54:00:12:34:56"
OTHER = "52:54:00:65:43:21"
UNKNOWN = "52:54:00:aa:bb:cc"
#: bytes of the fake loaders (distinct, so a test can tell which file it got)
FAKE_IPXE_EFI = b"MZ fake ipxe.efi " + bytes(range(256)) * 8
FAKE_UNDIONLY = b"fake undionly.kpxe " + bytes(range(255, -1, -1)) * 4

#: the test client's address: the machine's own in these tests
MACHINE_IP = "127.0.0.1"

TOKEN_RE = re.compile(r"token=([A-Za-z0-9_.~-]+)")

RuntimeFactory = Callable[..., Runtime]


def config_for(tmp_path: Path, **changes: Any) -> Config:
    """The test configuration: data in ``tmp_path/data``, fake loaders, server 10.0.0.1, no sockets."""
    loaders = tmp_path / "loaders"
    if not loaders.is_dir():
        loaders.mkdir()
        (loaders / "ipxe.efi").write_bytes(FAKE_IPXE_EFI)
        (loaders / "undionly.kpxe").write_bytes(FAKE_UNDIONLY)
    base = replace(Config(), data_dir=tmp_path / "data", profiles_dir=PROFILES,
                   server_ip=IPv4Address(SERVER), loaders=LoadersConfig(dir=loaders))
    return replace(base, **changes)


@pytest.fixture
def make_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RuntimeFactory]:
    """``make_runtime(unknown_default=..., profiles_dir=...)``: a runtime over this test's data dir.

    Profiles are re-checked on every access (no 2 s cache), so a test that edits a profile sees it at once.
    """
    monkeypatch.setattr(netboot.runtime, "PROFILE_CHECK_INTERVAL", 0.0)
    made: list[Runtime] = []

    def make(**changes: Any) -> Runtime:
        rt = build_runtime(config_for(tmp_path, **changes))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def runtime(make_runtime: RuntimeFactory) -> Runtime:
    return make_runtime()


def app_for(rt: Runtime) -> Flask:
    app = create_app(rt)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(runtime: Runtime) -> FlaskClient:
    return app_for(runtime).test_client()


@pytest.fixture
def profiles_copy(tmp_path: Path) -> Path:
    """A private copy of the sample profiles, free to break."""
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES, target)
    return target


def events_of(rt: Runtime, mac: MacAddress | None = None) -> list[StoredEvent]:
    """Stored events (oldest first), after the background writer has caught up."""
    assert rt.store.events.wait_idle(10)
    return rt.store.events.list(mac)


def phases(rt: Runtime, mac: MacAddress) -> list[str]:
    return [e.phase for e in events_of(rt, mac)]


def stored(rt: Runtime, mac: str) -> System | None:
    """The system as stored, once the sightings staged by the requests so far are written (the store's
    own writer does that within about half a second; ``flush`` does it now)."""
    rt.store.flush()
    return rt.store.systems.get(MacAddress.parse(mac))


def register(rt: Runtime, mac: str = MAC, profile: str = "debian12-preseed", hostname: str | None = "web1",
             **kw: Any) -> str:
    """Register through the same function the CLI, API and UI use; return the system's token.

    Then the machine boots as it would: the test client's address (127.0.0.1) is taught to the recorder as
    the one the MAC used in its DHCP exchange (what the DHCP service does), and the machine is served its
    boot script from there, which binds the token to that address and starts its lifetime. Tests of other
    addresses pass ``environ_base={"REMOTE_ADDR": ...}``; ``boot=False`` registers only.
    """
    booting = kw.pop("boot", True)
    system = registration.register(rt, mac, profile, hostname, **kw)
    assert system.token
    if booting:
        rt.recorder.learn(MACHINE_IP, system.mac)
        rt.core.boot_config("ipxe", system.mac, host=None, client_ip=MACHINE_IP)
    return system.token


def tokens_in(text: str) -> set[str]:
    return set(TOKEN_RE.findall(text))


def insert_line(path: Path, index: int, line: str) -> int:
    """Insert ``line`` before line ``index`` (0-based) of ``path``; return its 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(index, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")

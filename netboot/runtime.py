"""The one composition of what the servers, web app and CLI share: config, store, events, loaders, boot core.

Built once by the daemon (or by a CLI command that acts on the daemon's state). Only the composition layers
(``daemon.py``, the CLI and the web app factory) hold a :class:`Runtime`; everything below is handed the
narrow pieces it needs (the :class:`~netboot.boot.core.BootCore` over :mod:`netboot.boot.ports`, the store's
repositories), so no module reaches for globals or for the whole composition.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from netboot.boot.core import BootCore
from netboot.boot.ports import Site
from netboot.config import Config
from netboot.events import EventRecorder
from netboot.inventory import System
from netboot.loaders import Loaders, find_loaders
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet, load_profiles_collect
from netboot.render import ServerFacts
from netboot.servers.netif import default_server_ip, interface_info
from netboot.shimdisk import ShimDisk
from netboot.store import Store, StoreLimits, open_store

log = logging.getLogger("netboot")

#: the sample profiles of this checkout (or of the installed package's source tree)
SAMPLE_PROFILES = Path(__file__).resolve().parent.parent / "profiles"
#: how often (seconds) the profiles directory is checked for changes
PROFILE_CHECK_INTERVAL = 2.0


def profiles_dir_of(config: Config) -> Path:
    return config.profiles_dir or SAMPLE_PROFILES


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``root`` with its mtime and size: a change to any of them means reload."""
    out: list[tuple[str, int, int]] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            out.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


@dataclass
class Runtime:
    config: Config
    store: Store
    recorder: EventRecorder
    loaders: Loaders
    #: the address clients are told to use (next-server, URLs); None = each interface's own address
    server_ip: IPv4Address | None
    profiles_dir: Path = field(default=SAMPLE_PROFILES)
    _profiles: ProfileSet | None = field(default=None, repr=False)
    #: problems of the last (re)load, ``file:line: key: reason`` each; the last good set keeps serving
    profile_errors: list[str] = field(default_factory=list)
    _signature: tuple[tuple[str, int, int], ...] = field(default=(), repr=False)
    _checked: float = field(default=0.0, repr=False)
    #: set to stop the thread of :meth:`watch_profiles` (None: no thread, callers check)
    _watch: threading.Event | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _core: BootCore | None = field(default=None, repr=False)
    _shim_disk: ShimDisk | None = field(default=None, repr=False)

    @property
    def private_paths(self) -> tuple[Path, ...]:
        """What no profile's ``data_dir`` may contain: it serves all below it to anyone, and netboot's own
        data (the database, the web secret key) is not for the install network."""
        db_file = self.config.db_url.removeprefix("sqlite:///")
        return (self.config.data_dir, *([Path(db_file)] if db_file != self.config.db_url else []))

    @property
    def profiles(self) -> ProfileSet:
        """The loaded profiles, reloaded when a file under the directory changes.

        Once :meth:`watch_profiles` runs (the daemon), a thread of its own checks the directory and this
        only hands out the current set: a machine's request never waits for a walk of the tree. Without
        it (the CLI, tests) the caller checks, at most every :data:`PROFILE_CHECK_INTERVAL` seconds.
        """
        if self._watch is not None and self._profiles is not None:
            return self._profiles
        now = time.monotonic()
        with self._lock:
            if self._profiles is not None and now - self._checked < PROFILE_CHECK_INTERVAL:
                return self._profiles
            self._checked = now
            return self._reload_if_changed()

    def _reload_if_changed(self) -> ProfileSet:
        """Walk the directory; load it again when a file changed (under ``_lock``)."""
        signature = _signature(self.profiles_dir)
        if self._profiles is not None and signature == self._signature:
            return self._profiles
        loaded, errors = load_profiles_collect(self.profiles_dir, private=self.private_paths)
        self._signature = signature
        self.profile_errors = [str(e) for e in errors]
        # a broken edit keeps the last good set serving; the first load serves what loaded
        keep_previous = self._profiles is not None and bool(errors)
        if not keep_previous:
            self._profiles = loaded
            log.info("profiles loaded from %s: %s", self.profiles_dir, ", ".join(loaded.names()) or "none")
        outcome = "keeping the previous profiles" if keep_previous else "profile skipped"
        for message in self.profile_errors:
            log.error("profile problem (%s): %s", outcome, message)
        assert self._profiles is not None  # set above unless a previous set is kept
        return self._profiles

    def watch_profiles(self) -> None:
        """From now on a thread checks the profiles directory every :data:`PROFILE_CHECK_INTERVAL`
        seconds; :meth:`close` stops it."""
        if self._watch is not None:
            return
        with self._lock:
            if self._profiles is None:  # the daemon has loaded them already; a walk now would be the same
                self._reload_if_changed()
        stop = self._watch = threading.Event()

        def run() -> None:
            while not stop.wait(PROFILE_CHECK_INTERVAL):
                try:
                    with self._lock:
                        self._reload_if_changed()
                except Exception:  # a vanished directory, a permission change: keep serving the last set
                    log.exception("could not check the profiles in %s", self.profiles_dir)

        threading.Thread(target=run, name="profile-watch", daemon=True).start()

    @property
    def shim_disk(self) -> ShimDisk:
        """The shim-grub chain's UEFI HTTP Boot image, from the loaders found (built on first use)."""
        if self._shim_disk is None:
            self._shim_disk = ShimDisk(self.loaders.paths)
        return self._shim_disk

    @property
    def core(self) -> BootCore:
        """The boot core over this composition (built once; it reads the profiles as they are now)."""
        if self._core is None:
            cfg = self.config
            site = Site(
                unknown_default=cfg.unknown_default,
                local_boot=cfg.local_boot,
                boot_chain=cfg.boot_chain,
                http_port=cfg.ports.http,
                server_ip=self.server_ip,
                domain=cfg.dns.domain if cfg.dns.enabled else cfg.dhcp.domain,
                loaders=dict(self.loaders.by_arch),
                shim=self.loaders.shim_ready,
                shim_http=self.loaders.shim_http_ready,
                dhcp=cfg.dhcp.mode != "off",
                token_ttl=cfg.limits.install_token_ttl,
            )
            inventory = StoreInventory(self.store)
            self._core = BootCore(inventory, lambda: self.profiles, self.recorder, site, self.store.audit)
        return self._core

    def facts(self, host: str | None = None) -> ServerFacts:
        """Server facts for rendering; ``host`` (the address a client reached us at) when none is set."""
        return self.core.facts(host)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.set()
        self.store.close()


class StoreInventory:
    """The store's systems as the boot core's :class:`~netboot.boot.ports.Inventory`.

    Reads and synchronous writes go to the systems repository; ``stage_seen`` goes to the store's batch,
    which the DHCP thread's group commit (:meth:`Store.flush`) writes with the leases, or without a DHCP
    thread the store's own writer.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._systems = store.systems

    def get(self, mac: MacAddress) -> System | None:
        return self._systems.get(mac)

    def add(self, system: System) -> System:
        return self._systems.add(system)

    def save(self, system: System) -> System:
        return self._systems.save(system)

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        self._store.stage_seen(mac, arch=arch, uuid=uuid, now=now)


def resolve_server_ip(config: Config) -> IPv4Address | None:
    """Configured server address, else the first served interface's, else the first non-loopback one."""
    if config.server_ip is not None:
        return config.server_ip
    for name in config.interfaces:
        try:
            address = interface_info(name).address
        except OSError:
            continue
        if address is not None:
            return address
    return default_server_ip()


def build_runtime(config: Config) -> Runtime:
    store = open_store(config.db_url, StoreLimits.of(config.limits))
    return Runtime(
        config=config,
        store=store,
        recorder=EventRecorder(store.events),
        loaders=find_loaders(config.loaders),
        server_ip=resolve_server_ip(config),
        profiles_dir=profiles_dir_of(config),
    )

"""``netboot serve``: compose config, store and servers; run until SIGTERM/SIGINT; shut down cleanly.

Each server runs in its own thread and owns its sockets. The main thread only waits for a signal. The
ready line names every service, address and port, so an admin (and the tests) know when to start clients.
"""

from __future__ import annotations

import io
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from netboot.chaincheck import serve_warnings, shim_use
from netboot.config import Config
from netboot.dhcp.leases import LeasePool
from netboot.dhcp.service import DhcpService
from netboot.dns import HostResolver
from netboot.fs import PathRefused, normalise
from netboot.runtime import Runtime, build_runtime
from netboot.servers.dhcp import DhcpServer
from netboot.servers.dns import DnsServer
from netboot.servers.http import HttpServer
from netboot.servers.tftp import (
    AccessDenied,
    ChainResolver,
    FileSource,
    ProfileFilesResolver,
    RootResolver,
    TftpPeer,
    TftpResolver,
    TftpSource,
)
from netboot.servers.tftp_loops import TftpLoops
from netboot.store.db import SEEN_LINGER
from netboot.webapp import create_app

log = logging.getLogger("netboot")


class Server(Protocol):
    def serve_forever(self) -> None: ...
    def shutdown(self) -> None: ...


@dataclass
class Daemon:
    runtime: Runtime
    servers: dict[str, Server] = field(default_factory=dict)
    descriptions: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def config(self) -> Config:
        return self.runtime.config

    def start(self) -> None:
        self.runtime.watch_profiles()  # off the request path from here on
        for name, server in self.servers.items():
            thread = threading.Thread(target=self._run, args=(name, server), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, name: str, server: Server) -> None:
        try:
            server.serve_forever()
        except Exception:
            log.exception("%s server stopped with an error; shutting down", name)
            self.stop.set()

    def shutdown(self) -> None:
        for server in self.servers.values():
            try:
                server.shutdown()
            except Exception:
                log.exception("error stopping a server")
        for thread in self.threads:
            thread.join(timeout=5)
        for server in self.servers.values():
            close = getattr(server, "close", None)
            if close is not None:
                close()
        self.runtime.close()


def lease_pool(runtime: Runtime) -> LeasePool | None:
    """The daemon's pool in full mode (None in proxy mode): never hands out our own address or the router's.

    Apart from the server so its wiring is tested without sockets or root.
    """
    d = runtime.config.dhcp
    if d.mode != "full":
        return None
    assert d.range_first is not None and d.range_last is not None
    excluded = [ip for ip in (runtime.server_ip, d.router) if ip is not None]
    return LeasePool(
        d.range_first,
        d.range_last,
        lease_time=d.lease_time,
        repo=runtime.store.leases,
        reservations={r.mac: r.ip for r in d.reservations},
        excluded=excluded,
    )


def build_dhcp(runtime: Runtime) -> tuple[DhcpServer, str]:
    cfg = runtime.config
    d = cfg.dhcp
    service = DhcpService(d, booter=runtime.core, recorder=runtime.recorder, pool=lease_pool(runtime))
    bind = str(cfg.bind_ip or "0.0.0.0")
    server = DhcpServer(
        service,
        bind_ip=bind,
        port=d.port,
        proxy_port=d.proxy_port,
        interfaces=cfg.interfaces,
        # leases durable before their ACKs (sightings ride along); sightings alone after the replies
        flush=runtime.store.flush_for_replies,
        settle=runtime.store.flush_due,
        tick=SEEN_LINGER,  # so a due sighting is written even when no packet wakes the loop
    )
    runtime.store.leave_sightings_to_caller()  # this thread's group commit writes them, with the leases
    extra = f" range {d.range_first}-{d.range_last}" if d.mode == "full" else ""
    return server, f"dhcp ({d.mode}{extra}) on {bind}:{'+'.join(str(p) for p in server.ports)}"


def loader_resolver(runtime: Runtime, fallback: TftpResolver) -> TftpResolver:
    """Loaders by bare name (``undionly.kpxe``) from wherever they were found, then ``fallback``."""

    def resolve(filename: str, client: TftpPeer) -> TftpSource:
        try:
            name = normalise(filename)
        except PathRefused as exc:
            raise AccessDenied(exc.reason) from None
        path = runtime.loaders.path(name)
        if path is not None:
            return FileSource(io.FileIO(path, "r"))  # a path we found at start, not one the client chose
        return fallback(filename, client)

    return resolve


def build_tftp(runtime: Runtime, bind: str) -> tuple[TftpLoops, str]:
    cfg = runtime.config
    root = cfg.tftp_dir
    root.mkdir(parents=True, exist_ok=True)
    def data_dir_of(profile: str) -> Path | None:
        found = runtime.profiles.get(profile)
        return found.data_dir if found is not None else None

    files = ProfileFilesResolver(data_dir_of, RootResolver(root))
    def rendered(name: str, peer: TftpPeer) -> bytes | None:
        return runtime.core.tftp_file(name, (peer.ip, peer.port), host=peer.local)

    resolver = loader_resolver(runtime, ChainResolver(rendered, files))
    try:
        server = TftpLoops((bind, cfg.ports.tftp), resolver, runtime.recorder, loops=cfg.tftp_loops,
                           pin=cfg.tftp_pin)
    except ValueError as exc:  # more loops than this process has CPUs
        raise StartupError(f"tftp-loops: {exc}") from None
    return server, f"tftp on {bind}:{server.server_address[1]} (root {root}, {server.describe()})"


class StartupError(RuntimeError):
    """The daemon refuses to start; the message says what to fix."""


def build_daemon(config: Config) -> Daemon:
    runtime = build_runtime(config)
    daemon = Daemon(runtime)
    try:
        loaded = runtime.profiles
        if runtime.profile_errors:
            raise StartupError("bad profiles, fix them or run `netboot check`:\n  " +
                               "\n  ".join(runtime.profile_errors))
        log.info("profiles: %s (from %s)", ", ".join(loaded.names()), runtime.profiles_dir)
        if config.dhcp.mode != "off":
            dhcp, text = build_dhcp(runtime)
            daemon.servers["dhcp"] = dhcp
            daemon.descriptions.append(text)
        bind = str(config.bind_ip or "0.0.0.0")
        if config.tftp_enabled:
            tftp, text = build_tftp(runtime, bind)
            daemon.servers["tftp"] = tftp
            daemon.descriptions.append(text)
        if config.dns.enabled:
            dns = DnsServer(
                HostResolver(runtime.store, config.dns.domain, ttl=config.dns.ttl, subnet=config.dhcp.subnet),
                bind,
                config.ports.dns,
                tcp_timeout=config.dns.tcp_timeout,
                tcp_connections=config.dns.tcp_connections,
            )
            daemon.servers["dns"] = dns
            daemon.descriptions.append(f"dns ({config.dns.domain}) on {bind}:{dns.port}")
        if config.http_enabled:
            http = HttpServer(create_app(runtime), bind, config.ports.http, limits=config.http)
            daemon.servers["http"] = http
            daemon.descriptions.append(f"http on {bind}:{http.port}")
    except BaseException:
        for server in daemon.servers.values():
            close = getattr(server, "close", None)
            if close is not None:
                close()
        runtime.close()
        raise
    return daemon


def serve(config: Config) -> int:
    """Run the daemon in the foreground until a signal; returns the exit status."""
    daemon = build_daemon(config)
    runtime = daemon.runtime
    log.info("%s", runtime.loaders.describe())
    if runtime.loaders.missing:
        log.warning(
            "clients of these types will get no boot answer: %s (install Debian's 'ipxe' package or "
            "set loaders.dir)",
            ", ".join(a.value for a in runtime.loaders.missing),
        )
    use = shim_use(runtime.profiles, runtime.store.systems.list(), site_chain=config.boot_chain,
                   unknown_default=config.unknown_default, site_source=config.source)
    for line in serve_warnings(runtime.loaders, use):
        log.warning("%s", line)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        daemon.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.start()
    log.info(
        "netboot ready: %s; clients use server address %s; data in %s",
        "; ".join(daemon.descriptions),
        runtime.server_ip or "(each interface's own)",
        config.data_dir,
    )
    daemon.stop.wait()
    daemon.shutdown()
    log.info("netboot stopped")
    return 0

"""One composition of what the servers, web app and CLI share: config, store, event recorder, loaders.

Built once by the daemon (or by a CLI command that acts on the daemon's state) and passed down, so no
module reaches for globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from netboot.config import Config
from netboot.events import EventRecorder
from netboot.loaders import Loaders, find_loaders
from netboot.servers.netif import default_server_ip, interface_info
from netboot.store import Store, open_store


@dataclass
class Runtime:
    config: Config
    store: Store
    recorder: EventRecorder
    loaders: Loaders
    #: the address clients are told to use (next-server, URLs); None = each interface's own address
    server_ip: IPv4Address | None

    def tftp_dynamic(self, name: str, client: tuple[str, int]) -> bytes | None:
        """Per-MAC files rendered on request for TFTP (pxelinux/GRUB configs); None = not ours."""
        return None

    def close(self) -> None:
        self.store.close()


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
    store = open_store(config.db_url)
    return Runtime(
        config=config,
        store=store,
        recorder=EventRecorder(store.events),
        loaders=find_loaders(config.loaders),
        server_ip=resolve_server_ip(config),
    )

"""What ``netboot serve`` runs with: frozen dataclasses, defaults for everything, and cross-key checks.

The file shape (which keys a ``netboot.yaml`` may hold and how each is read) is
:mod:`netboot.config.schema`; the command-line flags on top are :mod:`netboot.config.overrides`. The
rest of netboot reads only these types.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from netboot.mac import MacAddress
from netboot.schema_types import DEFAULT_BOOT_CHAIN, DEFAULT_LOCAL_BOOT

DHCP_MODES = ("proxy", "full", "off")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: the most TFTP loops ``tftp-loops`` accepts (one per CPU at most; see netboot.servers.tftp_loops)
MAX_TFTP_LOOPS = 1024
#: Where Debian's ``ipxe`` package puts its binaries.
DEBIAN_IPXE_DIR = Path("/usr/lib/ipxe")


@dataclass(frozen=True)
class Reservation:
    """A static address for one MAC in full mode."""

    mac: MacAddress
    ip: IPv4Address
    hostname: str | None = None


@dataclass(frozen=True)
class DhcpConfig:
    mode: str = "proxy"
    port: int = 67
    proxy_port: int = 4011
    subnet: IPv4Network | None = None
    range_first: IPv4Address | None = None
    range_last: IPv4Address | None = None
    router: IPv4Address | None = None
    dns_servers: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    lease_time: int = 3600
    reservations: tuple[Reservation, ...] = ()


@dataclass(frozen=True)
class LoadersConfig:
    """Boot loaders by client type; names are looked up in ``dir`` (then Debian's /usr/lib/ipxe)."""

    dir: Path | None = None
    bios: str = "undionly.kpxe"
    uefi_x64: str = "ipxe.efi"
    uefi_arm64: str | None = None
    uefi_ia32: str | None = None
    #: serve ``snponly.efi`` instead of ``ipxe.efi`` to UEFI x64 (uses the firmware's NIC driver)
    snponly: bool = False


@dataclass(frozen=True)
class PortsConfig:
    tftp: int = 69
    http: int = 8080
    dns: int = 53


@dataclass(frozen=True)
class DnsConfig:
    enabled: bool = False
    domain: str = "netboot.lan"
    ttl: int = 300
    #: seconds a TCP client may stay idle (or take to send its query) before it is closed
    tcp_timeout: int = 10
    #: TCP connections served at once; one more is closed at once
    tcp_connections: int = 64


@dataclass(frozen=True)
class HttpConfig:
    """Limits of the HTTP server, set so slow or greedy clients cannot starve booting machines."""

    #: largest request body, in bytes (the API's largest body is a bulk registration, well under 1 MiB)
    max_body: int = 4 << 20
    #: largest request line plus headers, in bytes
    max_header: int = 64 << 10
    #: open connections at once; past it new ones wait in the listen backlog
    connection_limit: int = 1000
    #: seconds a connection may be idle (or slow to send its request) before it is closed
    idle_timeout: int = 30
    #: worker threads running the application
    threads: int = 16
    #: proxies whose ``X-Forwarded-*`` headers are believed (an empty tuple believes none)
    trusted_proxies: tuple[IPv4Network, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    """What an anonymous client on the install network can make netboot store, and for how long."""

    #: new discovered (unknown) machines recorded per minute; past it they are served but not stored
    discovered_per_minute: int = 120
    #: discovered machines kept at most; past it the oldest-seen are forgotten first
    discovered_max: int = 10000
    #: events kept at most; past it the oldest are removed first
    events_max: int = 500000
    #: events older than this many days are removed
    event_retention_days: int = 30
    #: seconds an install token lives after the boot script carrying it was served
    install_token_ttl: int = 4 * 3600


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class Config:
    """Everything ``netboot serve`` needs. Immutable; build variants with :func:`dataclasses.replace`."""

    server_ip: IPv4Address | None = None
    interfaces: tuple[str, ...] = ()
    bind_ip: IPv4Address | None = None
    dhcp: DhcpConfig = field(default_factory=DhcpConfig)
    ports: PortsConfig = field(default_factory=PortsConfig)
    tftp_enabled: bool = True
    tftp_root: Path | None = None
    #: TFTP loops on the port: ``"auto"`` (one per CPU this process may use, each pinned) or a number
    tftp_loops: int | str = "auto"
    #: pin each TFTP loop's thread to its CPUs (False: the scheduler moves them; requests are still
    #: handed to loops by the CPU they arrive on)
    tftp_pin: bool = True
    http_enabled: bool = True
    dns: DnsConfig = field(default_factory=DnsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    loaders: LoadersConfig = field(default_factory=LoadersConfig)
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    database_url: str | None = None
    profiles_dir: Path | None = None
    #: what an unknown (discovered) MAC gets: ``local``, ``menu`` or ``profile:NAME``
    unknown_default: str = "local"
    #: how a machine leaves for its disk when neither its system, group nor profile says
    #: (one of :data:`netboot.schema_types.LOCAL_BOOT_CHOICES`; ``skip``: no boot file at DHCP time)
    local_boot: str = DEFAULT_LOCAL_BOOT
    #: which loaders a machine gets when neither its system, group nor profile says (one of
    #: :data:`netboot.schema_types.BOOT_CHAIN_CHOICES`; ``shim-grub``: shim and signed GRUB, Secure Boot)
    boot_chain: str = DEFAULT_BOOT_CHAIN
    log: LogConfig = field(default_factory=LogConfig)
    source: str | None = None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'netboot.db'}"

    @property
    def tftp_dir(self) -> Path:
        return self.tftp_root or self.data_dir / "tftp"

    @property
    def files_dir(self) -> Path:
        """Where kernels, initrds and other HTTP-served files live (``/files/...``)."""
        return self.data_dir / "files"


class ConfigError(ValueError):
    """A configuration that is well-formed but inconsistent, naming the key at fault."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


def problems(cfg: Config) -> list[ConfigError]:
    """Every cross-key inconsistency, shared by file and flag configuration (empty when consistent)."""
    d = cfg.dhcp
    found: list[ConfigError] = []
    if d.range_first is not None and d.range_last is not None and int(d.range_last) < int(d.range_first):
        found.append(ConfigError("dhcp.range", "range end is before its start"))
    if d.mode != "full":
        return found
    if d.range_first is None or d.range_last is None:
        found.append(ConfigError("dhcp.range", "full DHCP mode needs an address range (FIRST-LAST)"))
    if d.subnet is not None:
        outside = [a for a in (d.range_first, d.range_last) if a is not None and a not in d.subnet]
        if outside:  # one error for the range, naming its first end outside
            found.append(ConfigError("dhcp.range", f"{outside[0]} is outside subnet {d.subnet}"))
        if d.router is not None and d.router not in d.subnet:
            found.append(ConfigError("dhcp.router", f"{d.router} is outside subnet {d.subnet}"))
        for res in d.reservations:
            if res.ip not in d.subnet:
                found.append(ConfigError("dhcp.reservations", f"{res.ip} ({res.mac}) is outside {d.subnet}"))
    return found


def validate(cfg: Config) -> None:
    """Raise the first of :func:`problems` as a :class:`ConfigError`."""
    found = problems(cfg)
    if found:
        raise found[0]


def default_data_dir() -> Path:
    """``$NETBOOT_DATA_DIR``, else /var/lib/netboot as root, else ~/.local/share/netboot."""
    env = os.environ.get("NETBOOT_DATA_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/netboot")
    return Path.home() / ".local/share/netboot"


def network_of(ip: IPv4Address, prefixlen: int) -> IPv4Network:
    return ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False)  # type: ignore[return-value]

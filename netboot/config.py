"""The daemon's configuration: one YAML file, defaults for everything, CLI flags on top.

``netboot serve`` with no file works (ProxyDHCP + TFTP + HTTP on the first interface's address). A bad file
is refused at start with file, line, key and reason, via :mod:`netboot.yamlsource`. Every key is documented
in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from netboot.mac import InvalidMac, MacAddress
from netboot.yamlsource import Located, SourceError, load

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
    loaders: LoadersConfig = field(default_factory=LoadersConfig)
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    database_url: str | None = None
    profiles_dir: Path | None = None
    #: what an unknown (discovered) MAC gets: ``local``, ``menu`` or ``profile:NAME``
    unknown_default: str = "local"
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


# --------------------------------------------------------------------------------------------- parsing


def _ip(value: Any) -> IPv4Address:
    return IPv4Address(str(value))


def _mac(value: Any) -> MacAddress:
    return MacAddress.parse(str(value))


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"must be a port number 0..65535, got {value!r}")
    return value


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _loops(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TFTP_LOOPS:
        raise ValueError(f"must be 'auto' or a number of loops 1..{MAX_TFTP_LOOPS}, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _choice(options: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}; got {value!r}")
        return str(value)

    return check


def _path(value: Any) -> Path:
    return Path(_str(value)).expanduser()


def _unknown_default(value: Any) -> str:
    text = _str(value)
    if text in ("local", "menu") or (text.startswith("profile:") and len(text) > len("profile:")):
        return text
    raise ValueError(f"must be local, menu or profile:NAME; got {value!r}")


def _check_keys(doc: Located, path: str, data: Any, allowed: Mapping[str, Any]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise doc.error(path, f"must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise doc.error(f"{path}.{key}" if path else key, f"unknown key{hint}")
    return data


def _convert(doc: Located, path: str, value: Any, conv: Any) -> Any:
    try:
        return conv(value)
    except (ValueError, TypeError, InvalidMac) as exc:
        raise doc.error(path, str(exc)) from None


def _section(doc: Located, path: str, data: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    values = _check_keys(doc, path, data, schema)
    return {
        key.replace("-", "_"): _convert(doc, f"{path}.{key}" if path else key, value, schema[key])
        for key, value in values.items()
    }


def _parse_reservations(doc: Located, items: Any) -> tuple[Reservation, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise doc.error("dhcp.reservations", "must be a list of {mac, ip, hostname}")
    out: list[Reservation] = []
    seen_mac: set[MacAddress] = set()
    seen_ip: set[IPv4Address] = set()
    for i, item in enumerate(items):
        path = f"dhcp.reservations.{i}"
        values = _section(doc, path, item, {"mac": _mac, "ip": _ip, "hostname": _str})
        if "mac" not in values or "ip" not in values:
            raise doc.error(path, "needs both mac and ip")
        res = Reservation(**values)
        if res.mac in seen_mac:
            raise doc.error(path, f"MAC {res.mac} is reserved twice")
        if res.ip in seen_ip:
            raise doc.error(path, f"address {res.ip} is reserved twice")
        seen_mac.add(res.mac)
        seen_ip.add(res.ip)
        out.append(res)
    return tuple(out)


def _parse_range(value: Any) -> tuple[IPv4Address, IPv4Address]:
    first, sep, last = str(value).partition("-")
    if not sep:
        raise ValueError(f"must be FIRST-LAST, e.g. 10.0.0.100-10.0.0.200; got {value!r}")
    a, b = IPv4Address(first.strip()), IPv4Address(last.strip())
    if int(b) < int(a):
        raise ValueError(f"range end {b} is before its start {a}")
    return a, b


_DHCP_SCHEMA: dict[str, Any] = {
    "mode": _choice(DHCP_MODES),
    "port": _port,
    "proxy-port": _port,
    "subnet": lambda v: IPv4Network(str(v), strict=False),
    "range": _parse_range,
    "router": _ip,
    "dns-servers": lambda v: tuple(_ip(x) for x in (v if isinstance(v, list) else [v])),
    "domain": _str,
    "lease-time": _positive,
    "reservations": None,  # parsed separately
}
_LOADER_SCHEMA: dict[str, Any] = {
    "dir": _path,
    "bios": _str,
    "uefi-x64": _str,
    "uefi-arm64": _str,
    "uefi-ia32": _str,
    "snponly": _bool,
}
_TOP_SCHEMA: dict[str, Any] = {
    "server-ip": _ip,
    "bind-ip": _ip,
    "interfaces": lambda v: tuple(_str(x) for x in (v if isinstance(v, list) else [v])),
    "data-dir": _path,
    "database-url": _str,
    "profiles-dir": _path,
    "tftp-root": _path,
    "tftp-loops": _loops,
    "tftp-pin": _bool,
    "unknown-default": _unknown_default,
    "dhcp": None,
    "ports": None,
    "services": None,
    "dns": None,
    "loaders": None,
    "log": None,
}


def parse(doc: Located) -> Config:
    """Turn a parsed YAML document into a :class:`Config`, or raise :class:`SourceError`."""
    raw = _check_keys(doc, "", doc.data, _TOP_SCHEMA)
    top = {k: v for k, v in raw.items() if _TOP_SCHEMA[k] is not None}
    cfg = Config(**_section(doc, "", top, _TOP_SCHEMA), source=doc.file)

    dhcp_raw = dict(_check_keys(doc, "dhcp", raw.get("dhcp"), _DHCP_SCHEMA))
    reservations = _parse_reservations(doc, dhcp_raw.pop("reservations", None))
    dhcp_vals = _section(doc, "dhcp", dhcp_raw, _DHCP_SCHEMA)
    if "range" in dhcp_vals:
        dhcp_vals["range_first"], dhcp_vals["range_last"] = dhcp_vals.pop("range")
    dhcp = replace(cfg.dhcp, reservations=reservations, **dhcp_vals)

    ports = replace(
        cfg.ports, **_section(doc, "ports", raw.get("ports"), {"tftp": _port, "http": _port, "dns": _port})
    )
    services = _section(doc, "services", raw.get("services"), {"tftp": _bool, "http": _bool})
    dns = replace(
        cfg.dns, **_section(doc, "dns", raw.get("dns"), {"enabled": _bool, "domain": _str, "ttl": _positive})
    )
    loaders = replace(cfg.loaders, **_section(doc, "loaders", raw.get("loaders"), _LOADER_SCHEMA))
    log = replace(
        cfg.log,
        **_section(
            doc,
            "log",
            raw.get("log"),
            {"level": lambda v: _choice(LOG_LEVELS)(str(v).upper()), "format": _choice(LOG_FORMATS)},
        ),
    )
    cfg = replace(
        cfg,
        dhcp=dhcp,
        ports=ports,
        dns=dns,
        loaders=loaders,
        log=log,
        tftp_enabled=services.get("tftp", True),
        http_enabled=services.get("http", True),
    )
    cfg = _relative_to(cfg, Path(doc.file).resolve().parent)
    try:
        validate(cfg)
    except ConfigError as exc:
        raise doc.error(exc.key, exc.reason) from None
    return cfg


def _relative_to(cfg: Config, base: Path) -> Config:
    """Relative paths in a config file mean "next to this file", whatever the working directory."""

    def fix(path: Path | None) -> Path | None:
        return base / path if path is not None and not path.is_absolute() else path

    loaders = replace(cfg.loaders, dir=fix(cfg.loaders.dir))
    return replace(
        cfg,
        data_dir=fix(cfg.data_dir) or cfg.data_dir,
        profiles_dir=fix(cfg.profiles_dir),
        tftp_root=fix(cfg.tftp_root),
        loaders=loaders,
    )


def load_config(path: Path | None) -> Config:
    """Load ``path`` (or defaults when None). Raises :class:`SourceError` naming file, line and key."""
    if path is None:
        return Config()
    if not path.is_file():
        raise SourceError(str(path), None, None, "no such configuration file")
    return parse(load(path))


class ConfigError(ValueError):
    """A configuration that is well-formed but inconsistent, naming the key at fault."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


def validate(cfg: Config) -> None:
    """Cross-key checks, shared by file and flag configuration."""
    d = cfg.dhcp
    if d.mode == "full":
        if d.range_first is None or d.range_last is None:
            raise ConfigError("dhcp.range", "full DHCP mode needs an address range (FIRST-LAST)")
        if d.subnet is not None:
            for key, addr in (
                ("dhcp.range", d.range_first),
                ("dhcp.range", d.range_last),
                ("dhcp.router", d.router),
            ):
                if addr is not None and addr not in d.subnet:
                    raise ConfigError(key, f"{addr} is outside subnet {d.subnet}")
            for res in d.reservations:
                if res.ip not in d.subnet:
                    raise ConfigError("dhcp.reservations", f"{res.ip} ({res.mac}) is outside {d.subnet}")
    if d.range_first is not None and d.range_last is not None and int(d.range_last) < int(d.range_first):
        raise ConfigError("dhcp.range", "range end is before its start")


# -------------------------------------------------------------------------------------- CLI overrides


@dataclass(frozen=True)
class Overrides:
    """``netboot serve`` flags; each set one replaces what the file said."""

    interfaces: tuple[str, ...] = ()
    server_ip: str | None = None
    dhcp_mode: str | None = None
    dhcp_range: str | None = None
    dhcp_port: int | None = None
    tftp_port: int | None = None
    http_port: int | None = None
    data_dir: str | None = None
    profiles: str | None = None
    loaders: str | None = None


def apply_overrides(cfg: Config, ov: Overrides) -> Config:
    """Apply command-line flags on top of the file; raises :class:`ConfigError` naming the flag."""
    dhcp, ports, loaders = cfg.dhcp, cfg.ports, cfg.loaders
    changes: dict[str, Any] = {}
    try:
        if ov.interfaces:
            changes["interfaces"] = ov.interfaces
        if ov.server_ip:
            changes["server_ip"] = IPv4Address(ov.server_ip)
    except ValueError as exc:
        raise ConfigError("--server-ip", str(exc)) from None
    if ov.dhcp_mode:
        if ov.dhcp_mode not in DHCP_MODES:
            raise ConfigError("--dhcp-mode", f"must be one of {', '.join(DHCP_MODES)}; got {ov.dhcp_mode!r}")
        dhcp = replace(dhcp, mode=ov.dhcp_mode)
    for flag, port in (
        ("--dhcp-port", ov.dhcp_port),
        ("--tftp-port", ov.tftp_port),
        ("--http-port", ov.http_port),
    ):
        if port is not None:
            try:
                _port(port)
            except ValueError as exc:
                raise ConfigError(flag, str(exc)) from None
    if ov.dhcp_range:
        try:
            first, last = _parse_range(ov.dhcp_range)
        except ValueError as exc:
            raise ConfigError("--dhcp-range", str(exc)) from None
        dhcp = replace(dhcp, range_first=first, range_last=last)
    if ov.dhcp_port is not None:
        dhcp = replace(dhcp, port=ov.dhcp_port)
    if ov.tftp_port is not None:
        ports = replace(ports, tftp=ov.tftp_port)
    if ov.http_port is not None:
        ports = replace(ports, http=ov.http_port)
    if ov.data_dir:
        changes["data_dir"] = Path(ov.data_dir)
    if ov.profiles:
        changes["profiles_dir"] = Path(ov.profiles)
    if ov.loaders:
        loaders = replace(loaders, dir=Path(ov.loaders))
    out = replace(cfg, dhcp=dhcp, ports=ports, loaders=loaders, **changes)
    validate(out)
    return out


def default_data_dir() -> Path:
    """``$NETBOOT_DATA_DIR``, else /var/lib/netboot as root, else ~/.local/share/netboot."""
    env = os.environ.get("NETBOOT_DATA_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/netboot")
    return Path.home() / ".local/share/netboot"


def config_keys() -> list[str]:
    """Every dotted key a config file may hold (for docs and tests)."""
    keys = [k for k, v in _TOP_SCHEMA.items() if v is not None]
    keys += [f"dhcp.{k}" for k in _DHCP_SCHEMA]
    keys += [f"ports.{k}" for k in ("tftp", "http", "dns")]
    keys += ["services.tftp", "services.http", "dns.enabled", "dns.domain", "dns.ttl"]
    keys += [f"loaders.{k}" for k in _LOADER_SCHEMA]
    keys += ["log.level", "log.format"]
    return keys


def network_of(ip: IPv4Address, prefixlen: int) -> IPv4Network:
    return ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False)  # type: ignore[return-value]

"""The shape of ``netboot.yaml``, as pydantic models, and the reading of a file into a :class:`Config`.

Each section is a :class:`~netboot.schema_types.FileModel` whose fields carry their own validators, so
the keys a file may hold, their types and their refusals are declared once, here; every problem of a
file is reported (``file:line: key: reason``, unknown keys with a did-you-mean) through
:func:`netboot.yamlsource.schema_errors`. Keys are spelled with hyphens (``lease-time``); the
``lease_time`` spelling is an unknown key that suggests the hyphenated one. Every key is documented in
``docs/configuration.md``; keep the two in step (a test compares them).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator

from netboot.config.model import (
    DHCP_MODES,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_TFTP_LOOPS,
    Config,
    DhcpConfig,
    DnsConfig,
    HttpConfig,
    LimitsConfig,
    LoadersConfig,
    LogConfig,
    PortsConfig,
    Reservation,
    problems,
)
from netboot.schema_types import (
    DEFAULT_BOOT_CHAIN,
    DEFAULT_LOCAL_BOOT,
    BootChain,
    FileModel,
    Hostname,
    IPv4,
    LocalBoot,
    Mac,
    ipv4,
    text,
)
from netboot.yamlsource import Located, SourceError, SourceErrors, load, schema_errors

# -------------------------------------------------------------------------------------- value checks


def port(value: Any) -> int:
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
    """Non-empty one-line text: ``dhcp.domain`` and ``dns.domain`` reach DHCP option 15, DNS answers and
    the Debian kernel line in boot scripts, and no other string here has a use for a control character."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return text(value)


def _path(value: Any) -> Path:
    return Path(_str(value)).expanduser()


def _choice_check(options: tuple[str, ...], value: Any, *, upper: bool = False) -> str:
    text = str(value).upper() if upper else value
    if text not in options:
        raise ValueError(f"must be one of {', '.join(options)}; got {value!r}")
    return str(text)


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Any:
    # a partial of a module function, not a lambda made at import: the mutation tests reach the check
    return PlainValidator(partial(_choice_check, options, upper=upper))


def _unknown_default(value: Any) -> str:
    text = _str(value)
    if text in ("local", "menu") or (text.startswith("profile:") and len(text) > len("profile:")):
        return text
    raise ValueError(f"must be local, menu or profile:NAME; got {value!r}")


def parse_range(value: Any) -> tuple[IPv4Address, IPv4Address]:
    """``FIRST-LAST`` as two addresses, the last not before the first."""
    first, sep, last = str(value).partition("-")
    if not sep:
        raise ValueError(f"must be FIRST-LAST, e.g. 10.0.0.100-10.0.0.200; got {value!r}")
    a, b = IPv4Address(first.strip()), IPv4Address(last.strip())
    if int(b) < int(a):
        raise ValueError(f"range end {b} is before its start {a}")
    return a, b


def _subnet(value: Any) -> IPv4Network:
    return IPv4Network(str(value), strict=False)


def _one_or_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


Port = Annotated[int, PlainValidator(port)]
Positive = Annotated[int, PlainValidator(_positive)]
Flag = Annotated[bool, PlainValidator(_bool)]
NonEmpty = Annotated[str, PlainValidator(_str)]
PathValue = Annotated[Path, PlainValidator(_path)]
Range = Annotated[tuple[IPv4Address, IPv4Address], PlainValidator(parse_range)]
Subnet = Annotated[IPv4Network, PlainValidator(_subnet)]
Addresses = Annotated[
    tuple[IPv4Address, ...], PlainValidator(lambda v: tuple(ipv4(x) for x in _one_or_list(v)))
]
Subnets = Annotated[
    tuple[IPv4Network, ...], PlainValidator(lambda v: tuple(_subnet(x) for x in _one_or_list(v)))
]
Names = Annotated[tuple[str, ...], PlainValidator(lambda v: tuple(_str(x) for x in _one_or_list(v)))]


# ------------------------------------------------------------------------------------------ sections


class _Section(FileModel):
    """A ``netboot.yaml`` mapping: keys spelled with hyphens; ``key:`` with no value is an empty section."""

    model_config = ConfigDict(alias_generator=lambda name: name.replace("_", "-"), validate_by_name=False)
    null_is_empty: ClassVar[bool] = True


class ReservationFile(_Section):
    null_is_empty: ClassVar[bool] = False
    mac: Mac
    ip: IPv4
    hostname: Hostname | None = None


def _dhcp_mode(value: Any) -> str:
    # YAML 1.1 reads a bare ``mode: off`` as false: that is what an admin who writes it means
    return _choice_check(DHCP_MODES, "off" if value is False else value)


class DhcpFile(_Section):
    mode: Annotated[str, PlainValidator(_dhcp_mode)] = "proxy"
    port: Port = 67
    proxy_port: Port = 4011
    subnet: Subnet | None = None
    range: Range | None = None
    router: IPv4 | None = None
    dns_servers: Addresses = ()
    domain: NonEmpty | None = None
    lease_time: Positive = 3600
    reservations: tuple[ReservationFile, ...] = ()

    @field_validator("reservations", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValueError("must be a list of {mac, ip, hostname}")
        return value


class PortsFile(_Section):
    tftp: Port = 69
    http: Port = 8080
    dns: Port = 53


class ServicesFile(_Section):
    tftp: Flag = True
    http: Flag = True


class DnsFile(_Section):
    enabled: Flag = False
    domain: NonEmpty = "netboot.lan"
    ttl: Positive = 300
    tcp_timeout: Positive = 10
    tcp_connections: Positive = 64


class HttpFile(_Section):
    max_body: Positive = 4 << 20
    max_header: Positive = 64 << 10
    connection_limit: Positive = 1000
    idle_timeout: Positive = 30
    threads: Positive = 16
    trusted_proxies: Subnets = ()


class LimitsFile(_Section):
    discovered_per_minute: Positive = 120
    discovered_max: Positive = 10000
    events_max: Positive = 500000
    event_retention_days: Positive = 30
    install_token_ttl: Positive = 4 * 3600


class LoadersFile(_Section):
    dir: PathValue | None = None
    bios: NonEmpty = "undionly.kpxe"
    uefi_x64: NonEmpty = "ipxe.efi"
    uefi_arm64: NonEmpty | None = None
    uefi_ia32: NonEmpty | None = None
    snponly: Flag = False


class LogFile(_Section):
    level: Annotated[str, _choice(LOG_LEVELS, upper=True)] = "INFO"
    format: Annotated[str, _choice(LOG_FORMATS)] = "text"


class ConfigFile(_Section):
    """A whole ``netboot.yaml`` (an empty or comment-only file is all defaults)."""

    server_ip: IPv4 | None = None
    bind_ip: IPv4 | None = None
    interfaces: Names = ()
    data_dir: PathValue | None = None
    database_url: NonEmpty | None = None
    profiles_dir: PathValue | None = None
    tftp_root: PathValue | None = None
    tftp_loops: Annotated[int | str, PlainValidator(_loops)] = "auto"
    tftp_pin: Flag = True
    unknown_default: Annotated[str, PlainValidator(_unknown_default)] = "local"
    local_boot: LocalBoot = DEFAULT_LOCAL_BOOT
    boot_chain: BootChain = DEFAULT_BOOT_CHAIN
    dhcp: DhcpFile = Field(default_factory=DhcpFile)
    ports: PortsFile = Field(default_factory=PortsFile)
    services: ServicesFile = Field(default_factory=ServicesFile)
    dns: DnsFile = Field(default_factory=DnsFile)
    http: HttpFile = Field(default_factory=HttpFile)
    limits: LimitsFile = Field(default_factory=LimitsFile)
    loaders: LoadersFile = Field(default_factory=LoadersFile)
    log: LogFile = Field(default_factory=LogFile)

    def to_config(self, source: str) -> Config:
        d = self.dhcp
        first, last = d.range if d.range is not None else (None, None)
        dhcp = DhcpConfig(
            mode=d.mode,
            port=d.port,
            proxy_port=d.proxy_port,
            subnet=d.subnet,
            range_first=first,
            range_last=last,
            router=d.router,
            dns_servers=d.dns_servers,
            domain=d.domain,
            lease_time=d.lease_time,
            reservations=tuple(Reservation(r.mac, r.ip, r.hostname) for r in d.reservations),
        )
        names = ["server_ip", "bind_ip", "interfaces", "database_url", "profiles_dir", "tftp_root"]
        names += ["tftp_loops", "tftp_pin", "unknown_default", "local_boot", "boot_chain"]
        top = {name: getattr(self, name) for name in names}
        if self.data_dir is not None:
            top["data_dir"] = self.data_dir
        return Config(
            **top,
            dhcp=dhcp,
            ports=PortsConfig(**_values(self.ports)),
            tftp_enabled=self.services.tftp,
            http_enabled=self.services.http,
            dns=DnsConfig(**_values(self.dns)),
            http=HttpConfig(**_values(self.http)),
            limits=LimitsConfig(**_values(self.limits)),
            loaders=LoadersConfig(**_values(self.loaders)),
            log=LogConfig(**_values(self.log)),
            source=source,
        )


def _values(section: BaseModel) -> dict[str, Any]:
    """A section's validated values by field name (``model_dump`` would serialise them)."""
    return {name: getattr(section, name) for name in type(section).model_fields}


def _duplicates(doc: Located, cfg: Config) -> list[SourceError]:
    """A MAC or an address reserved twice, at the second reservation."""
    out: list[SourceError] = []
    macs: set[object] = set()
    ips: set[object] = set()
    for i, res in enumerate(cfg.dhcp.reservations):
        path = f"dhcp.reservations.{i}"
        if res.mac in macs:
            out.append(doc.error(path, f"MAC {res.mac} is reserved twice"))
        if res.ip in ips:
            out.append(doc.error(path, f"address {res.ip} is reserved twice"))
        macs.add(res.mac)
        ips.add(res.ip)
    return out


def parse(doc: Located) -> Config:
    """Turn a parsed YAML document into a :class:`Config`, or raise :class:`SourceErrors` (every problem)."""
    try:
        shape = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        raise SourceErrors(schema_errors(doc, exc, ConfigFile)) from None
    cfg = _relative_to(shape.to_config(doc.file), Path(doc.file).resolve().parent)
    errors = _duplicates(doc, cfg) + [doc.error(p.key, p.reason) for p in problems(cfg)]
    if errors:
        raise SourceErrors(sorted(errors, key=lambda e: e.line or 0))
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


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, _Section) and sub is not ReservationFile:
            out += _keys(sub, key + ".")
        else:
            out.append(key)
    return out


def config_keys() -> list[str]:
    """Every dotted key a config file may hold (for docs and tests), read off the models."""
    return _keys(ConfigFile)

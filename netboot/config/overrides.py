"""``netboot serve`` flags on top of the file: each flag given replaces what the file said."""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from netboot.config.model import DHCP_MODES, Config, ConfigError, validate
from netboot.config.schema import parse_range, port


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
    for flag, number in (
        ("--dhcp-port", ov.dhcp_port),
        ("--tftp-port", ov.tftp_port),
        ("--http-port", ov.http_port),
    ):
        if number is not None:
            try:
                port(number)
            except ValueError as exc:
                raise ConfigError(flag, str(exc)) from None
    if ov.dhcp_range:
        try:
            first, last = parse_range(ov.dhcp_range)
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

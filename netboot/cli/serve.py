"""``netboot serve``: run the daemon with the configuration file's settings and the flags over them."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from netboot.cli.common import fail, load, state_options
from netboot.config import Config, ConfigError, Overrides


@click.command()
@state_options
@click.option(
    "--interface",
    "-i",
    "interfaces",
    multiple=True,
    metavar="IFACE",
    help="Serve DHCP only on this interface (repeatable). Default: every interface.",
)
@click.option(
    "--server-ip",
    metavar="IP",
    help="Address clients use to reach this server (next-server, URLs). "
    "Default: the first served interface's address.",
)
@click.option(
    "--dhcp-mode",
    type=click.Choice(["proxy", "full", "off"]),
    help="proxy: boot info only, beside an existing DHCP server (ports 67+4011). full: netboot "
    "owns the leases (needs --dhcp-range). off: no DHCP. Default: proxy.",
)
@click.option(
    "--dhcp-range",
    metavar="FIRST-LAST",
    help="Addresses to lease in full mode, e.g. 10.0.0.100-10.0.0.200; the subnet is taken from "
    "the interface unless dhcp.subnet is configured.",
)
@click.option(
    "--dhcp-port", type=click.IntRange(0, 65535), metavar="N", help="DHCP server port (default 67)."
)
@click.option("--tftp-port", type=click.IntRange(0, 65535), metavar="N", help="TFTP port (default 69).")
@click.option("--http-port", type=click.IntRange(0, 65535), metavar="N", help="HTTP port (default 8080).")
@click.option("--profiles", type=click.Path(file_okay=False), metavar="DIR", help="Profiles directory.")
@click.option(
    "--loaders",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Directory with boot loaders (undionly.kpxe, ipxe.efi...). Default: /usr/lib/ipxe.",
)
def serve(
    config_file: Path | None,
    data_dir: Path | None,
    interfaces: tuple[str, ...],
    server_ip: str | None,
    dhcp_mode: str | None,
    dhcp_range: str | None,
    dhcp_port: int | None,
    tftp_port: int | None,
    http_port: int | None,
    profiles: str | None,
    loaders: str | None,
) -> None:
    """Run the daemon: DHCP/ProxyDHCP, TFTP and HTTP (and DNS when enabled).

    Flags override the config file. With no file: ProxyDHCP + TFTP + HTTP on every interface, state in
    /var/lib/netboot (as root), sample profiles. Logs one line when ready, naming every service and port.

    \b
    Examples:
      netboot serve --interface eth1
      netboot serve --interface eth1 --dhcp-mode full --dhcp-range 10.0.0.100-10.0.0.200
    """
    from netboot.daemon import StartupError
    from netboot.daemon import serve as run
    from netboot.logutil import setup_logging
    from netboot.store import StoreError

    cfg = load(
        config_file,
        data_dir,
        Overrides(
            interfaces=interfaces,
            server_ip=server_ip,
            dhcp_mode=dhcp_mode,
            dhcp_range=dhcp_range,
            dhcp_port=dhcp_port,
            tftp_port=tftp_port,
            http_port=http_port,
            data_dir=None,
            profiles=profiles,
            loaders=loaders,
        ),
    )
    setup_logging(cfg.log.level, cfg.log.format)
    cfg = _full_mode_subnet(cfg)
    try:
        sys.exit(run(cfg))
    except (StoreError, StartupError) as exc:
        fail(str(exc), 1)
    except PermissionError as exc:
        fail(f"{exc} (ports below 1024 need root or CAP_NET_BIND_SERVICE)", 1)
    except OSError as exc:
        fail(f"cannot start: {exc}", 1)


def _full_mode_subnet(cfg: Config) -> Config:
    """Full mode without a configured subnet: take it from the (first) interface, as --help promises."""
    from netboot.config import validate
    from netboot.servers.netif import interface_info

    d = cfg.dhcp
    if d.mode != "full" or d.subnet is not None or not cfg.interfaces:
        return cfg
    try:
        info = interface_info(cfg.interfaces[0])
    except OSError as exc:
        fail(f"--interface {cfg.interfaces[0]}: {exc}")
    if info.network is None:
        fail(f"--interface {cfg.interfaces[0]} has no IPv4 address: cannot derive the DHCP subnet")
    out = replace(cfg, dhcp=replace(d, subnet=info.network))
    try:
        validate(out)
    except ConfigError as exc:
        fail(f"{exc.key}: {exc.reason} (subnet from {cfg.interfaces[0]})")
    return out


COMMANDS: list[click.Command] = [serve]

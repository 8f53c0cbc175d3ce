"""The ``netboot`` command line.

Every command takes ``--config FILE`` and ``--data-dir DIR`` so it acts on the same state as the daemon.
Errors are one line naming the thing at fault (a file and line, a flag, a MAC), with exit status 2 for bad
input and 1 for failures.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from netboot import __version__
from netboot.config import Config, ConfigError, Overrides, apply_overrides, load_config
from netboot.yamlsource import SourceError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, status: int = 2) -> None:
    click.echo(f"netboot: {message}", err=True)
    sys.exit(status)


def state_options(func: F) -> F:
    """``--config`` and ``--data-dir``: shared by every command that touches netboot's state."""
    func = click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="State directory (database, TFTP root, files). Overrides the config file.",
    )(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="NETBOOT_CONFIG",
        help="YAML configuration file (docs/configuration.md). [env: NETBOOT_CONFIG]",
    )(func)
    return func


def load(config_file: Path | None, data_dir: Path | None, overrides: Overrides | None = None) -> Config:
    try:
        cfg = load_config(config_file)
        if data_dir is not None:
            cfg = replace(cfg, data_dir=data_dir)
        if overrides is not None:
            cfg = apply_overrides(cfg, overrides)
    except SourceError as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(f"{exc.key}: {exc.reason}")
    return cfg


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="netboot")
def main() -> None:
    """netboot: install operating systems over the network, per MAC address.

    One daemon answers PXE and UEFI HTTP boots (DHCP or ProxyDHCP), serves boot loaders over TFTP and
    HTTP, and renders each machine's answer file on request from its profile.

    Start with `netboot serve --help`.
    """


@main.command()
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


@main.command()
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array) instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Include expired and declined leases.")
def leases(config_file: Path | None, data_dir: Path | None, as_json: bool, show_all: bool) -> None:
    """List DHCP leases (full mode) from the daemon's database."""
    from netboot.store import StoreError, open_store

    cfg = load(config_file, data_dir)
    try:
        store = open_store(cfg.db_url)
    except StoreError as exc:
        fail(str(exc), 1)
    now = time.time()
    rows = [lease for lease in store.leases.all() if show_all or lease.active(now)]
    rows.sort(key=lambda lease: int(lease.ip))
    store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "ip": str(x.ip),
                        "mac": str(x.mac),
                        "hostname": x.hostname,
                        "state": x.state,
                        "client_id": x.client_id.hex() if x.client_id else None,
                        "starts": x.starts,
                        "expires": x.expires,
                        "active": x.active(now),
                    }
                    for x in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no leases")
        return
    click.echo(f"{'IP':<16}{'MAC':<19}{'HOSTNAME':<24}{'STATE':<10}EXPIRES")
    for x in rows:
        expires = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x.expires))
        state = x.state if x.active(now) or x.state != "active" else "expired"
        click.echo(f"{x.ip!s:<16}{x.mac!s:<19}{x.hostname or '-':<24}{state:<10}{expires}")


def _register_commands() -> None:
    """Subcommands live in their own modules; they import this one for its helpers, so attach them last."""
    from netboot.cli_accounts import add_to
    from netboot.cli_lab import lab
    from netboot.cli_systems import COMMANDS

    for command in COMMANDS:
        main.add_command(command)
    main.add_command(lab)
    add_to(main)


_register_commands()

if __name__ == "__main__":
    main()

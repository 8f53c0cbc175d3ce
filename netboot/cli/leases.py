"""``netboot leases``: the DHCP leases (full mode) in the daemon's database."""

from __future__ import annotations

import time
from pathlib import Path

import click

from netboot.cli.common import echo_json, state_options, store_of, when


@click.command()
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array) instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Include expired and declined leases.")
def leases(config_file: Path | None, data_dir: Path | None, as_json: bool, show_all: bool) -> None:
    """List DHCP leases (full mode) from the daemon's database."""
    store = store_of(config_file, data_dir)
    now = time.time()
    rows = [lease for lease in store.leases.all() if show_all or lease.active(now)]
    rows.sort(key=lambda lease: int(lease.ip))
    store.close()
    if as_json:
        echo_json(
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
            ]
        )
        return
    if not rows:
        click.echo("no leases")
        return
    click.echo(f"{'IP':<16}{'MAC':<19}{'HOSTNAME':<24}{'STATE':<10}EXPIRES")
    for x in rows:
        expires = when(x.expires)
        state = x.state if x.active(now) or x.state != "active" else "expired"
        click.echo(f"{x.ip!s:<16}{x.mac!s:<19}{x.hostname or '-':<24}{state:<10}{expires}")


COMMANDS: list[click.Command] = [leases]

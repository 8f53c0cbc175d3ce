"""``netboot system ...``: register machines (MAC -> profile) and manage their install state.

It acts on the daemon's state (``--config``/``--data-dir``), through the same registration rules as the web UI
and API (:mod:`netboot.registration`), so a MAC, hostname or profile refused there is refused here, with the
same message naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from netboot import registration
from netboot.cli.common import actor, echo_json, fail, opened, state_options, when
from netboot.inventory import SystemState
from netboot.schema_types import BOOT_CHAIN_CHOICES, LOCAL_BOOT_CHOICES

#: ``--boot-chain``'s help, shared by ``add`` and ``set`` (the UI and API say the same)
BOOT_CHAIN_HELP = (
    "Which loaders it gets: ipxe = iPXE loads the boot script (no Secure Boot); shim-grub = the "
    "Microsoft-signed shim loads signed GRUB, for machines with UEFI Secure Boot on. Default: its group's, "
    "profile's or the config's boot-chain (ipxe)."
)


def _vars(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON (numbers, true, lists) is taken as such."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--var: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out



@click.group()
def system() -> None:
    """Register machines (MAC -> profile) and manage their install state.

    States: install (the next netboot installs), installed / local (the next netboot boots the local
    disk), discovered (an unknown MAC seen booting).
    """


@system.command("add")
@state_options
@click.argument("mac")
@click.option("--profile", "-p", required=True, help="Profile to install (see `netboot profile list`).")
@click.option("--hostname", "-n", help="Host name (RFC 1123).")
@click.option("--ip", help="Static address: a DHCP reservation in full mode, and what DNS answers.")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="A template variable for this system (repeatable); JSON values are parsed.",
)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label for group selectors.")
@click.option(
    "--local-boot",
    type=click.Choice(LOCAL_BOOT_CHOICES),
    help="How it leaves for its disk once installed: skip = no boot file from DHCP, the firmware boots "
    "its next device (default, inherited from its group, profile and the config); auto, exit or sanboot = "
    "through iPXE, for firmware that needs the hand-back.",
)
@click.option("--boot-chain", type=click.Choice(BOOT_CHAIN_CHOICES), help=BOOT_CHAIN_HELP)
def system_add(
    config_file: Path | None,
    data_dir: Path | None,
    mac: str,
    profile: str,
    hostname: str | None,
    ip: str | None,
    variables: tuple[str, ...],
    labels: tuple[str, ...],
    local_boot: str | None,
    boot_chain: str | None,
) -> None:
    """Register MAC (any spelling) to a profile; its next netboot installs it."""
    with opened(config_file, data_dir) as runtime:
        added = registration.register(
            runtime,
            mac,
            profile,
            hostname,
            ip,
            _vars(variables),
            labels={k: str(v) for k, v in _vars(labels).items()},
            actor=actor(),
            local_boot=local_boot,
            boot_chain=boot_chain,
        )
        click.echo(
            f"registered {added.mac} ({added.hostname or 'no hostname'}) -> {added.profile}; "
            "its next netboot installs it"
        )


@system.command("list")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--state", type=click.Choice([s.value for s in SystemState]), help="Only systems in this state."
)
@click.option("--profile", help="Only systems with this profile.")
def system_list(
    config_file: Path | None, data_dir: Path | None, as_json: bool, state: str | None, profile: str | None
) -> None:
    """List registered and discovered systems."""
    with opened(config_file, data_dir) as runtime:
        rows = runtime.store.systems.list(state=SystemState(state) if state else None, profile=profile)
    if as_json:
        echo_json([s.as_json() for s in rows])
        return
    if not rows:
        click.echo("no systems")
        return
    click.echo(f"{'MAC':<19}{'HOSTNAME':<24}{'PROFILE':<24}{'STATE':<12}{'IP':<16}LAST SEEN")
    for s in rows:
        click.echo(
            f"{s.mac!s:<19}{s.hostname or '-':<24}{s.profile or '-':<24}{s.state.value:<12}"
            f"{str(s.ip) if s.ip else '-':<16}{when(s.last_seen)}"
        )


@system.command("show")
@state_options
@click.argument("mac")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--events", "n_events", type=int, default=20, show_default=True, help="How many recent events.")
def system_show(
    config_file: Path | None, data_dir: Path | None, mac: str, as_json: bool, n_events: int
) -> None:
    """One system: its fields, token (while installing) and recent boot events."""
    with opened(config_file, data_dir) as runtime:
        found = registration.get(runtime, mac)
        events = runtime.store.events.list(found.mac, limit=n_events)
        chain = runtime.core.choice(found).boot_chain
    if as_json:
        echo_json(
            {
                **found.as_json(with_token=True),
                "events": [
                    {"time": e.time, "phase": e.phase, "summary": e.summary, "client_ip": e.client_ip}
                    for e in events
                ],
            }
        )
        return
    for key, value in found.as_json(with_token=True).items():
        if key in ("first_seen", "last_seen"):
            value = when(value)
        shown = value if value not in (None, {}, "") else "-"
        if key == "boot_chain" and value is None:  # inherited: say what it gets
            shown = f"- (inherits {chain})"
        click.echo(f"{key + ':':<12}{shown}")
    click.echo("events:" if events else "events:     none yet")
    for e in events:
        click.echo(f"  {when(e.time)}  {e.phase:<12} {e.client_ip or '-':<15} {e.summary}")


@system.command("set")
@state_options
@click.argument("mac")
@click.option("--profile", "-p", help="New profile.")
@click.option("--hostname", "-n", help="New host name ('' clears it).")
@click.option("--ip", help="New static address ('' clears it).")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Set a variable (repeatable).")
@click.option("--unset-var", "unset", multiple=True, metavar="KEY", help="Remove a variable (repeatable).")
@click.option(
    "--state",
    type=click.Choice([s.value for s in SystemState if s is not SystemState.DISCOVERED]),
    help="Set the install state (install gives a fresh token).",
)
@click.option(
    "--local-boot",
    type=click.Choice([*LOCAL_BOOT_CHOICES, "inherit"]),
    help="How it leaves for its disk (see `system add --help`); inherit = its group's, profile's or the "
    "config's.",
)
@click.option(
    "--boot-chain",
    type=click.Choice([*BOOT_CHAIN_CHOICES, "inherit"]),
    help=f"{BOOT_CHAIN_HELP} inherit = back to that default.",
)
def system_set(
    config_file: Path | None,
    data_dir: Path | None,
    mac: str,
    profile: str | None,
    hostname: str | None,
    ip: str | None,
    variables: tuple[str, ...],
    unset: tuple[str, ...],
    state: str | None,
    local_boot: str | None,
    boot_chain: str | None,
) -> None:
    """Change a system's profile, hostname, address, variables, state, local boot or boot chain."""
    with opened(config_file, data_dir) as runtime:
        current = registration.get(runtime, mac)
        changes: dict[str, Any] = {}
        if profile is not None:
            changes["profile"] = profile
        if hostname is not None:
            changes["hostname"] = hostname or None
        if ip is not None:
            changes["ip"] = ip or None
        if variables or unset:
            merged = {**current.variables, **_vars(variables)}
            for key in unset:
                merged.pop(key, None)
            changes["variables"] = merged
        if state is not None:
            changes["state"] = state
        if local_boot is not None:
            changes["local_boot"] = None if local_boot == "inherit" else local_boot
        if boot_chain is not None:
            changes["boot_chain"] = None if boot_chain == "inherit" else boot_chain
        if not changes:
            fail(
                "nothing to change: give --profile, --hostname, --ip, --var, --unset-var, --state, "
                "--local-boot or --boot-chain"
            )
        changed = registration.set_fields(runtime, current.mac, actor(), **changes)
        click.echo(f"{changed.mac}: {', '.join(sorted(changes))} updated (state {changed.state.value})")


@system.command("remove")
@state_options
@click.argument("mac")
def system_remove(config_file: Path | None, data_dir: Path | None, mac: str) -> None:
    """Forget a system (its events stay in the history)."""
    with opened(config_file, data_dir) as runtime:
        removed = registration.remove(runtime, mac, actor())
        click.echo(f"removed {removed.mac}")


@system.command("reinstall")
@state_options
@click.argument("mac")
def system_reinstall(config_file: Path | None, data_dir: Path | None, mac: str) -> None:
    """Mark a system for installation at its next netboot (with a fresh token)."""
    with opened(config_file, data_dir) as runtime:
        changed = registration.reinstall(runtime, mac, actor())
        click.echo(f"{changed.mac}: its next netboot installs {changed.profile}")


COMMANDS: list[click.Command] = [system]

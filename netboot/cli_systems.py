"""``netboot system``, ``profile``, ``render`` and ``check``: the inventory from the command line.

They act on the daemon's state (``--config``/``--data-dir``), through the same registration rules as the
web UI and API (:mod:`netboot.registration`), so a MAC, hostname or profile refused there is refused here,
with the same message naming the field.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from netboot import registration
from netboot.cli import fail, load, state_options
from netboot.inventory import System, SystemState
from netboot.mac import InvalidMac, MacAddress
from netboot.runtime import Runtime, build_runtime


def actor() -> str:
    """Who made a change from the shell, for the audit log: ``cli:<login>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def opened(config_file: Path | None, data_dir: Path | None) -> Iterator[Runtime]:
    from netboot.store import StoreError

    cfg = load(config_file, data_dir)
    try:
        runtime = build_runtime(cfg)
    except StoreError as exc:
        fail(str(exc), 1)
    try:
        yield runtime
    except registration.FieldError as exc:
        fail(str(exc))
    finally:
        runtime.store.events.wait_idle()
        runtime.close()


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


def system_json(system: System, *, with_token: bool = False) -> dict[str, Any]:
    return system.as_json(with_token=with_token)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


# ------------------------------------------------------------------------------------------ system


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
def system_add(
    config_file: Path | None,
    data_dir: Path | None,
    mac: str,
    profile: str,
    hostname: str | None,
    ip: str | None,
    variables: tuple[str, ...],
    labels: tuple[str, ...],
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
            labels={k: str(v) for k, v in _vars(labels).items()}, actor=actor(),
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
        click.echo(json.dumps([system_json(s) for s in rows], indent=2))
        return
    if not rows:
        click.echo("no systems")
        return
    click.echo(f"{'MAC':<19}{'HOSTNAME':<24}{'PROFILE':<24}{'STATE':<12}{'IP':<16}LAST SEEN")
    for s in rows:
        click.echo(
            f"{s.mac!s:<19}{s.hostname or '-':<24}{s.profile or '-':<24}{s.state.value:<12}"
            f"{str(s.ip) if s.ip else '-':<16}{_when(s.last_seen)}"
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
    if as_json:
        click.echo(
            json.dumps(
                {
                    **system_json(found, with_token=True),
                    "events": [
                        {"time": e.time, "phase": e.phase, "summary": e.summary, "client_ip": e.client_ip}
                        for e in events
                    ],
                },
                indent=2,
            )
        )
        return
    for key, value in system_json(found, with_token=True).items():
        if key in ("first_seen", "last_seen"):
            value = _when(value)
        click.echo(f"{key + ':':<12}{value if value not in (None, {}, '') else '-'}")
    click.echo("events:" if events else "events:     none yet")
    for e in events:
        click.echo(f"  {_when(e.time)}  {e.phase:<12} {e.client_ip or '-':<15} {e.summary}")


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
) -> None:
    """Change a system's profile, hostname, address, variables or state."""
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
        if not changes:
            fail("nothing to change: give --profile, --hostname, --ip, --var, --unset-var or --state")
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


# ----------------------------------------------------------------------------------------- profile


@click.group()
def profile() -> None:
    """Inspect profiles (folders under the profiles directory: profile.yaml + templates)."""


@profile.command("list")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def profile_list(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Every loaded profile with its kind; load problems are printed too."""
    with opened(config_file, data_dir) as runtime:
        profiles, errors = runtime.profiles, runtime.profile_errors
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"name": p.name, "kind": p.kind, "description": p.description, "parent": p.parent}
                    for p in profiles
                ],
                indent=2,
            )
        )
    else:
        for p in profiles:
            click.echo(f"{p.name:<28}{p.kind:<12}{p.description}")
    for message in errors:
        click.echo(f"netboot: {message}", err=True)
    if errors:
        sys.exit(1)


@profile.command("show")
@state_options
@click.argument("name")
def profile_show(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """One profile with its parents merged in: boot files, command line, templates, variables."""
    with opened(config_file, data_dir) as runtime:
        found = runtime.profiles.get(name)
        names = runtime.profiles.names()
    if found is None:
        fail(f"no profile {name!r}; profiles: {', '.join(names)}")
    assert found is not None
    info = {
        "name": found.name,
        "kind": found.kind,
        "description": found.description,
        "file": str(found.file),
        "parent": found.parent,
        "lineage": list(found.lineage),
        "kernel": found.kernel and {"path": found.kernel.path, "url": found.kernel.url},
        "initrds": [{"path": s.path, "url": s.url} for s in found.initrds],
        "cmdline": list(found.cmdline),
        "data_dir": str(found.data_dir) if found.data_dir else None,
        "templates": dict(found.templates),
        "variables": dict(found.variables),
    }
    click.echo(json.dumps(info, indent=2, default=str))


# ------------------------------------------------------------------------------------ render, check


@click.command()
@state_options
@click.argument("mac")
@click.option(
    "--kind",
    "-k",
    default="ipxe",
    show_default=True,
    help="ipxe, grub or pxelinux for the boot config; or an answer-file name of the system's "
    "profile (preseed.cfg, ks.cfg, user-data, autoinst.xml, rules...).",
)
def render(config_file: Path | None, data_dir: Path | None, mac: str, kind: str) -> None:
    """Print exactly what the machine with MAC would get now (nothing is recorded or changed)."""
    from netboot.render import RenderError, UnknownAnswerFile

    with opened(config_file, data_dir) as runtime:
        try:
            address = MacAddress.parse(mac)
        except InvalidMac as exc:
            fail(f"mac: {exc}")
        try:
            click.echo(runtime.machines.preview(address, kind, runtime.facts()), nl=False)
        except RenderError as exc:
            fail(f"render failed: {exc}", 1)
        except (UnknownAnswerFile, LookupError) as exc:
            # the message itself (str() of a KeyError would quote it; stripping quotes cut real ones)
            fail(str(exc.args[0]) if exc.args else str(exc))


@click.command()
@state_options
@click.option("--quiet", "-q", is_flag=True, help="Print problems only.")
def check(config_file: Path | None, data_dir: Path | None, quiet: bool) -> None:
    """Load every profile, render each against a sample system and run its installer's validator.

    Exits non-zero on any error (warnings are printed but pass).
    """
    from netboot.render import check_all, tool_versions

    with opened(config_file, data_dir) as runtime:
        problems = check_all(runtime.profiles_dir, runtime.facts())
        names = runtime.profiles.names()
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        click.echo(str(p), err=p.severity == "error")
    if not quiet:
        versions = ", ".join(f"{k} {v}" for k, v in tool_versions().items())
        click.echo(
            f"checked {len(names)} profiles ({', '.join(names)}) with {versions}: "
            f"{len(errors)} errors, {len(problems) - len(errors)} warnings"
        )
    if errors:
        sys.exit(1)


COMMANDS = [system, profile, render, check]

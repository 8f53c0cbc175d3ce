"""``netboot profile ...``, ``render`` and ``check``: the profiles and what they render, from the shell.

They load the profiles as the daemon does (``--config``/``--data-dir``), so what they print is what a machine
would get.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from netboot.cli.common import echo_json, fail, opened, state_options
from netboot.mac import InvalidMac, MacAddress


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
        echo_json(
            [
                {"name": p.name, "kind": p.kind, "description": p.description, "parent": p.parent}
                for p in profiles
            ]
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
        # None: not said here or by a parent (the group's, then the config's, apply)
        "local_boot": found.local_boot,
        "boot_chain": found.boot_chain,
    }
    echo_json(info, default=str)


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
    from netboot.render import BOOT_KINDS, RenderError, UnknownAnswerFile

    with opened(config_file, data_dir) as runtime:
        try:
            address = MacAddress.parse(mac)
        except InvalidMac as exc:
            fail(f"mac: {exc}")
        try:
            click.echo(runtime.core.preview(address, kind), nl=False)
            choice = runtime.core.choice(runtime.store.systems.get(address))
            if kind in BOOT_KINDS and choice.skips_dhcp:
                click.echo(
                    f"netboot: note: {address} gets no boot file from DHCP ({choice.reason}, local_boot "
                    "skip): its firmware boots its next device; this is only what it gets if it asks",
                    err=True,
                )
        except RenderError as exc:
            fail(f"render failed: {exc}", 1)
        except (UnknownAnswerFile, LookupError) as exc:
            # the message itself (str() of a KeyError would quote it; stripping quotes cut real ones)
            fail(str(exc.args[0]) if exc.args else str(exc))


@click.command()
@state_options
@click.option("--quiet", "-q", is_flag=True, help="Print problems only.")
def check(config_file: Path | None, data_dir: Path | None, quiet: bool) -> None:
    """Load every profile, render each against a sample system and run its installer's validator; say
    which boot loaders are missing, and what the Secure Boot (shim-grub) chain lacks where it is chosen.

    Exits non-zero on any error (warnings are printed but pass).
    """
    from netboot.chaincheck import check_problems, ipxe_problems, shim_use
    from netboot.render import check_all, tool_versions

    with opened(config_file, data_dir) as runtime:
        problems = check_all(runtime.profiles_dir, runtime.facts(), private=runtime.private_paths)
        names = runtime.profiles.names()
        cfg = runtime.config
        use = shim_use(runtime.profiles, runtime.store.systems.list(), site_chain=cfg.boot_chain,
                       unknown_default=cfg.unknown_default, site_source=cfg.source)
        problems += ipxe_problems(runtime.loaders) + check_problems(runtime.loaders, use)
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


COMMANDS: list[click.Command] = [profile, render, check]

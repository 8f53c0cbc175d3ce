"""``netboot lab``: watch machines install, in a private network of QEMU VMs (see docs/lab.md).

The work is in :mod:`netboot.lab`; this module turns its results into lines, JSON and exit statuses.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import termios
import time
import tty
from pathlib import Path

import click

from netboot.cli.common import fail, load, state_options
from netboot.qemu import FIRMWARES

NAME_OPTION = click.option(
    "--name",
    default="netboot-lab",
    show_default=True,
    metavar="NAME",
    help="Lab name: its namespace and its directory <data-dir>/lab/NAME.",
)


def _data_dir(config_file: Path | None, data_dir: Path | None) -> Path:
    return load(config_file, data_dir).data_dir


def _unicode() -> bool:
    return (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"


@click.group()
def lab() -> None:
    """A private lab network in which QEMU VMs network-boot and install from netboot.

    `lab up` creates a network namespace with a bridge (10.99.0.1/24, no route out, no link to the host's
    interfaces), runs netboot in it, registers VMs to a profile and boots them, showing each step live.
    Needs root and Debian's qemu-system-x86, qemu-utils, ipxe-qemu, ipxe and ovmf (dnsmasq-base for
    --proxy). Under TCG (no usable /dev/kvm) expect a few minutes until the installer fetches its answer
    file.

    \b
      netboot lab up                      # 1 BIOS VM, profile debian12-preseed, netboot as DHCP server
      netboot lab up --vms 2 --firmware uefi-http --proxy
      netboot lab status
      netboot lab console vm1
      netboot lab screenshot vm1          # the VM's screen as PNG (the installer's dialogs)
      netboot lab down
    """


@lab.command("up")
@state_options
@NAME_OPTION
@click.option("--vms", type=click.IntRange(1, 16), default=1, show_default=True, help="Number of VMs.")
@click.option(
    "--firmware",
    type=click.Choice(FIRMWARES),
    default="bios",
    show_default=True,
    help="bios: SeaBIOS + iPXE ROM. uefi: OVMF PXE (TFTP ipxe.efi). uefi-http: OVMF UEFI HTTP Boot.",
)
@click.option(
    "--profile",
    default="debian12-preseed",
    show_default=True,
    metavar="NAME",
    help="Profile the VMs are registered to.",
)
@click.option(
    "--profiles",
    "profiles_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Profiles directory. Default: profiles-dir from --config, else the sample profiles.",
)
@click.option(
    "--proxy",
    is_flag=True,
    help="Run dnsmasq as the network's DHCP server and netboot as ProxyDHCP beside it.",
)
@click.option(
    "--until",
    type=click.Choice(["dhcp", "script", "answer", "done"]),
    help="Wait until every VM got a lease (dhcp), its boot script (script), fetched its answer file "
    "(answer) or finished installing (done). Default: done with --mirror-dir, else answer.",
)
@click.option(
    "--timeout",
    type=click.IntRange(10, 24 * 3600),
    default=1200,
    show_default=True,
    metavar="SECONDS",
    help="Give up waiting after this long (the lab keeps running).",
)
@click.option(
    "--memory",
    "memory_mb",
    type=click.IntRange(256, 65536),
    default=1024,
    show_default=True,
    metavar="MB",
    help="Memory per VM.",
)
@click.option(
    "--disk-size",
    "disk_gb",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    metavar="GB",
    help="Virtual disk per VM (sparse qcow2).",
)
@click.option(
    "--accel",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default="auto",
    show_default=True,
    help="auto: KVM when /dev/kvm can really run a guest, else TCG.",
)
@click.option(
    "--ui-port",
    type=click.IntRange(0, 65535),
    default=8099,
    show_default=True,
    metavar="PORT",
    help="Relay 127.0.0.1:PORT on the host to netboot's HTTP server in the lab; 0: none.",
)
@click.option(
    "--mirror-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="DIR",
    help="A local Debian mirror (with dists/ and pool/), served in the lab at 10.99.0.1:3142 and set as "
    "the VMs' mirror: the installer can then finish.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="A variable for the VMs' systems (repeatable), e.g. --var disk=/dev/vda.",
)
def up_cmd(
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    vms: int,
    firmware: str,
    profile: str,
    profiles_dir: Path | None,
    proxy: bool,
    until: str | None,
    timeout: int,
    memory_mb: int,
    disk_gb: int,
    accel: str,
    ui_port: int,
    mirror_dir: Path | None,
    variables: tuple[str, ...],
) -> None:
    """Create the lab, boot the VMs and show their progress until --until; leave the lab running."""
    from netboot.lab.core import LabError, UpOptions, default_profiles_dir, report, up, watch

    cfg = load(config_file, data_dir)
    pairs = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--var {item!r}: expected KEY=VALUE")
        pairs[key] = value
    opts = UpOptions(
        name=name,
        vms=vms,
        firmware=firmware,
        profile=profile,
        proxy=proxy,
        until=until,
        timeout=timeout,
        memory_mb=memory_mb,
        disk_gb=disk_gb,
        accel=accel,
        ui_port=ui_port,
        mirror_dir=mirror_dir,
        variables=pairs,
    )
    profiles = profiles_dir or cfg.profiles_dir or default_profiles_dir()
    interactive = sys.stdout.isatty()
    started = time.time()

    def say(text: str) -> None:
        click.echo(text)

    try:
        state, files = up(opts, data_dir=cfg.data_dir, profiles_dir=profiles, say=say)
    except LabError as exc:
        fail(str(exc), exc.status)
    mode = "dnsmasq DHCP + netboot ProxyDHCP" if proxy else "netboot DHCP"
    target = until or ("done" if mirror_dir else "answer")
    say(
        f"lab {name!r}: {vms} VM(s), firmware {firmware}, profile {profile}, {mode}, "
        f"{state.accel.upper()}{' (no usable KVM)' if state.accel == 'tcg' else ''}; network 10.99.0.0/24 in "
        f"namespace {name}"
    )
    if state.ui_url:
        say(f"UI: {state.ui_url}  (user {state.ui_user}, password {state.ui_password})")
    say(
        f"waiting until every VM reached '{target}' (at most {timeout} s; "
        "Ctrl-C stops the waiting, not the lab)\n"
    )
    try:
        result = watch(
            state,
            files,
            until=target,
            timeout=timeout - (time.time() - started),
            say=say,
            tty=interactive,
            unicode=_unicode(),
            started=started,
        )
    except KeyboardInterrupt:
        say("\nstopped watching; the lab keeps running (netboot lab status / netboot lab down)")
        sys.exit(130)
    report(state, result, target, started, say)
    if not result.ok:
        sys.exit(1)


@lab.command("status")
@state_options
@NAME_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_cmd(config_file: Path | None, data_dir: Path | None, name: str, as_json: bool) -> None:
    """Show the lab: namespaces, processes, and how far each VM got. Exit 1 when no lab is up."""
    from netboot.lab.core import LabError, status

    try:
        info = status(_data_dir(config_file, data_dir), name)
    except LabError as exc:
        fail(str(exc), exc.status)
    if info is None:
        if as_json:
            click.echo(json.dumps({"name": name, "up": False}))
        else:
            click.echo(f"no lab {name!r} (netboot lab up)")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        sys.exit(0 if info["up"] else 1)
    age = time.time() - float(info["created"])
    health = "up" if info["up"] else "NOT HEALTHY (some part stopped; netboot lab down cleans it)"
    click.echo(f"lab {info['name']!r}: {health}; created {int(age // 60)} min ago; {info['dir']}")
    click.echo(
        f"  firmware {info['firmware']}, profile {info['profile']}, DHCP {info['dhcp']}, {info['accel']}"
    )
    click.echo(
        f"  netboot   {info['server']} in namespace {info['name']}"
        + (f"; UI on the host: {info['ui']}" if info["ui"] else "")
    )
    if info.get("ui_user"):
        click.echo(f"  UI login  user {info['ui_user']}, password {info['ui_password']}")
    for ns, present in info["namespaces"].items():
        click.echo(f"  namespace {ns}: {'present' if present else 'MISSING'}")
    for p in info["processes"]:
        click.echo(
            f"  {p['role']:<11} pid {p['pid']:<7} {'running' if p['running'] else 'STOPPED':<8} "
            f"{p['log'] or ''}"
        )
    for vm in info["vms"]:
        reached = vm["stage_label"] or "nothing yet"
        click.echo(
            f"  {vm['name']:<5} {vm['mac']}  {vm['hostname']:<10} {vm['ip'] or '-':<14} {reached}"
            + (f"  ({vm['note']})" if vm["note"] else "")
        )
    sys.exit(0 if info["up"] else 1)


@lab.command("console")
@state_options
@NAME_OPTION
@click.argument("vm")
@click.option(
    "--log", "show_log", is_flag=True, help="Print the serial log and exit (default when not a terminal)."
)
@click.option("--follow", "-f", is_flag=True, help="Print the serial log and keep printing what is added.")
def console_cmd(
    config_file: Path | None, data_dir: Path | None, name: str, vm: str, show_log: bool, follow: bool
) -> None:
    """Attach to VM's serial console (Ctrl-] detaches), or print its serial log.

    Everything the VM writes to its serial port is also kept in <lab dir>/vms/VM/serial.log.
    """
    from netboot.lab import procs
    from netboot.lab.core import LabError, find_vm

    try:
        state, record = find_vm(_data_dir(config_file, data_dir), name, vm)
    except LabError as exc:
        fail(str(exc), exc.status)
    log = Path(record.serial_log)
    if show_log or follow or not (sys.stdin.isatty() and sys.stdout.isatty()):
        _print_log(log, follow)
        return
    proc = state.proc(f"qemu:{record.name}")
    if proc is None or not procs.alive(proc):
        click.echo(f"{record.name} is not running; its serial log:", err=True)
        _print_log(log, False)
        return
    click.echo(
        f"attached to {record.name}'s serial console ({record.serial_socket}); Ctrl-] detaches", err=True
    )
    _attach(Path(record.serial_socket))
    click.echo("\ndetached", err=True)


def _print_log(log: Path, follow: bool) -> None:
    if not log.exists():
        click.echo(f"(no serial output yet: {log})", err=True)
        if not follow:
            return
    out = sys.stdout.buffer
    pos = 0
    try:
        while True:
            if log.exists():
                with log.open("rb") as fh:
                    fh.seek(pos)
                    data = fh.read()
                    pos += len(data)
                    out.write(data)
                    out.flush()
            if not follow:
                return
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _attach(path: Path) -> None:
    """Relay the terminal to QEMU's serial socket in raw mode until Ctrl-] or the VM closes it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        fail(f"cannot attach to {path}: {exc}", 1)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        while True:
            ready, _, _ = select.select([fd, sock], [], [])
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                os.write(sys.stdout.fileno(), data)
            if fd in ready:
                data = os.read(fd, 1024)
                if not data or b"\x1d" in data:
                    return
                sock.sendall(data)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sock.close()


@lab.command("screenshot")
@state_options
@NAME_OPTION
@click.argument("vm")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Where to save it. Default: <lab dir>/vms/VM/screen.png.",
)
def screenshot_cmd(
    config_file: Path | None, data_dir: Path | None, name: str, vm: str, output: Path | None
) -> None:
    """Save VM's screen as PNG (the Debian installer draws its dialogs there, not on the serial port)."""
    from netboot.lab.core import LabError, find_vm
    from netboot.lab.qmp import QmpError, screenshot

    try:
        _state, record = find_vm(_data_dir(config_file, data_dir), name, vm)
    except LabError as exc:
        fail(str(exc), exc.status)
    if not record.qmp_socket:
        fail(f"{record.name} has no monitor socket", 1)
    out = output or Path(record.dir) / "screen.png"
    try:
        screenshot(Path(record.qmp_socket), out)
    except (QmpError, OSError) as exc:
        fail(f"{record.name}: {exc}", 1)
    click.echo(str(out))


@lab.command("down")
@state_options
@NAME_OPTION
def down_cmd(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Remove everything the lab created: VMs, netboot, dnsmasq, namespaces, taps, bridge, its files."""
    from netboot.lab.core import LabError, down

    try:
        removed = down(_data_dir(config_file, data_dir), name, click.echo)
    except LabError as exc:
        fail(str(exc), exc.status)
    click.echo(f"lab {name!r} is down" if removed else f"no lab {name!r} (nothing to remove)")


COMMANDS: list[click.Command] = [lab]

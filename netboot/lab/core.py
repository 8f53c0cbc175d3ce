"""``netboot lab``: a private network in a namespace, netboot serving it, QEMU VMs booting from it.

Layout (nothing joins it to the host's interfaces; there is no route out)::

    namespace <name>:  br0 10.99.0.1/24  <- netboot serve (DHCP full or ProxyDHCP, TFTP, HTTP :8080)
                       tap0..tapN-1 on br0 <- one QEMU VM each (also run inside the namespace)
                       dhcp0 on br0 ─veth─ namespace <name>-dhcp: eth0 10.99.0.2/24 <- dnsmasq (--proxy only)

Everything it creates is recorded first in ``<data-dir>/lab/<name>/state.json`` (see
:mod:`netboot.lab.state`), so :func:`down` removes exactly that, and a failed :func:`up` removes what it
had made before reporting the error.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netboot import qemu
from netboot.lab import procs
from netboot.lab.netns import Namespace, NetnsError
from netboot.lab.netns import exists as netns_exists
from netboot.lab.progress import (
    LABELS,
    UNTIL,
    Display,
    Files,
    Tracker,
    clock,
    expected_files,
    installer_acks,
    parse_ss,
)
from netboot.lab.state import STATE_FILE, LabState, VmRecord

NET = "10.99.0"
SERVER_IP = f"{NET}.1"
DHCP_SERVER_IP = f"{NET}.2"
RANGE = (f"{NET}.100", f"{NET}.199")
BRIDGE = "br0"
MIRROR_PORT = 3142
MAC_PREFIX = "52:54:00:4e:42"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
MAX_VMS = 16

Say = Callable[[str], None]


class LabError(Exception):
    """A lab command could not do what was asked. ``status`` 2 = bad input, 1 = failure."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UpOptions:
    name: str = "netboot-lab"
    vms: int = 1
    firmware: str = "bios"
    profile: str = "debian12-preseed"
    proxy: bool = False
    #: ``dhcp``, ``script``, ``answer`` or ``done``; None = ``done`` with a mirror, else ``answer``
    until: str | None = None
    timeout: float = 1200.0
    memory_mb: int = 1024
    disk_gb: int = 8
    accel: str = "auto"
    #: host loopback port forwarded to the UI inside the lab; 0 = none
    ui_port: int = 8099
    http_port: int = 8080
    mirror_dir: Path | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


def lab_root(data_dir: Path, name: str) -> Path:
    return data_dir / "lab" / name


def default_profiles_dir() -> Path:
    """The sample profiles: the repository's ``profiles/`` (a source checkout) or /usr/share/netboot."""
    here = Path(__file__).resolve().parent.parent.parent / "profiles"
    return here if here.is_dir() else Path("/usr/share/netboot/profiles")


def python_argv() -> list[str]:
    return [sys.executable]


def netboot_argv() -> list[str]:
    """How to run ``netboot`` (the console script next to this Python, else the module)."""
    script = Path(sys.executable).parent / "netboot"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "netboot.cli"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETBOOT_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mac_of(index: int) -> str:
    return f"{MAC_PREFIX}:{index:02x}"


# ------------------------------------------------------------------------------------------ checks


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise LabError(
            f"--name {name!r}: use 1-24 lowercase letters, digits and '-', starting with a letter", 2
        )


def check_root() -> None:
    if os.geteuid() != 0:
        raise LabError("netboot lab needs root: it creates a network namespace, a bridge and tap devices", 2)


def missing_packages(firmware: str, proxy: bool) -> list[str]:
    from netboot.config import LoadersConfig
    from netboot.loaders import find_loaders

    missing = []
    if shutil.which("ip") is None:
        missing.append("iproute2")
    missing += qemu.missing_firmware(firmware)
    missing += qemu.missing_disk_tools()
    if firmware.startswith("uefi"):
        from netboot.arch import Arch

        if Arch.UEFI_X64 not in find_loaders(LoadersConfig()).by_arch:
            missing.append("ipxe")
    if proxy and shutil.which("dnsmasq") is None:
        missing.append("dnsmasq-base")
    if shutil.which("ss") is None and "iproute2" not in missing:
        missing.append("iproute2")
    return sorted(set(missing))


def resolve_profile(profiles_dir: Path, name: str) -> Files:
    """Check that ``name`` is a loadable profile that can boot inside the lab; return its boot files."""
    from netboot.profiles import did_you_mean, load_profiles_collect

    if not (profiles_dir / name).is_dir() and not profiles_dir.is_dir():
        raise LabError(f"profiles directory {profiles_dir} does not exist (use --profiles DIR)", 2)
    profile_set, errors = load_profiles_collect(profiles_dir)
    profile = profile_set.get(name)
    if profile is None:
        own = [str(e) for e in errors if f"/{name}/" in str(e)]
        if own:
            raise LabError(f"profile {name!r} does not load:\n  " + "\n  ".join(own), 2)
        names = profile_set.names()
        raise LabError(
            f"profile {name!r} does not exist in {profiles_dir}{did_you_mean(name, names)}; "
            f"available: {', '.join(names) or 'none'}",
            2,
        )
    if profile.kernel is None:
        return Files()
    sources = [profile.kernel, *profile.initrds]
    sizes: list[int | None] = []
    for src in sources:
        local = profile.data_file(src.path) if src.path else None
        if local is None:
            where = src.url or src.path
            raise LabError(
                f"profile {name!r}: {src.name} is not available locally ({where}); the lab has no "
                f"route out, so its VMs could not fetch it (install the package that provides "
                f"{profile.data_dir or 'it'}, e.g. debian-installer-12-netboot-amd64)",
                2,
            )
        sizes.append(local.stat().st_size)
    return expected_files(profile.kernel.path, [i.path for i in profile.initrds if i.path], sizes)


def choose_accel(accel: str, say: Say) -> str:
    if accel == "tcg":
        return "tcg"
    if not Path("/dev/kvm").exists():
        if accel == "kvm":
            raise LabError("--accel kvm: there is no /dev/kvm on this machine; use --accel tcg or auto", 2)
        return "tcg"
    say("checking whether /dev/kvm can run a guest (boots a probe kernel for a few seconds)...")
    usable = qemu.kvm_usable()
    if accel == "kvm" and not usable:
        raise LabError("--accel kvm: /dev/kvm cannot run a guest on this machine; use --accel tcg or auto", 2)
    if not usable:
        say("KVM is not usable here (the probe guest did not start): using TCG, which is slower")
    return "kvm" if usable else "tcg"


def load_state(root: Path) -> LabState | None:
    path = root / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabState.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(
            f"{path}: unreadable lab state ({exc}); remove it by hand after checking `ip netns list`"
        ) from None


def is_alive(state: LabState) -> bool:
    """A lab is up while its namespace exists and one of its processes still runs."""
    return any(netns_exists(n) for n in state.namespaces[:1]) and any(procs.alive(p) for p in state.procs)


# --------------------------------------------------------------------------------------------- up


def up(opts: UpOptions, *, data_dir: Path, profiles_dir: Path, say: Say) -> tuple[LabState, Files]:
    """Create the lab and boot the VMs; return its state and what the VMs will download."""
    check_name(opts.name)
    check_root()
    if not 1 <= opts.vms <= MAX_VMS:
        raise LabError(f"--vms {opts.vms}: between 1 and {MAX_VMS}", 2)
    if opts.firmware not in qemu.FIRMWARES:
        raise LabError(f"--firmware {opts.firmware!r}: one of {', '.join(qemu.FIRMWARES)}", 2)
    until = opts.until or ("done" if opts.mirror_dir else "answer")
    if until not in UNTIL:
        raise LabError(f"--until {until!r}: one of {', '.join(UNTIL)}", 2)
    if until == "done" and opts.mirror_dir is None:
        raise LabError(
            "--until done needs a local package source (--mirror-dir): the lab has no route out, so "
            "the installer can get no packages from the Internet",
            2,
        )
    root = lab_root(data_dir, opts.name)
    stale = _check_existing(root, opts.name)
    missing = missing_packages(opts.firmware, opts.proxy)
    if missing:
        raise LabError(
            f"missing Debian packages for this lab: {' '.join(missing)} "
            f"(apt-get install {' '.join(missing)})",
            2,
        )
    if opts.mirror_dir is not None and not (opts.mirror_dir / "dists").is_dir():
        raise LabError(f"--mirror-dir {opts.mirror_dir}: not a Debian mirror (no dists/ in it)", 2)
    files = resolve_profile(profiles_dir, opts.profile)
    accel = choose_accel(opts.accel, say)
    if stale is not None:
        say(f"lab {opts.name!r}: found stale state from an earlier run that no longer runs; cleaning it up")
        for problem in teardown(stale, say):
            say(f"  could not remove: {problem}")
    state = LabState(
        kernel_names=sorted(files.kernel),
        initrd_names=sorted(files.initrds),
        download_bytes=files.total_bytes,
        name=opts.name,
        root=str(root),
        firmware=opts.firmware,
        profile=opts.profile,
        profiles_dir=str(profiles_dir),
        dhcp="proxy" if opts.proxy else "full",
        accel=accel,
        server_ip=SERVER_IP,
        http_port=opts.http_port,
    )
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    state.save()
    with _rollback_on_error(state, say):
        _build(state, opts, say)
    return state, files


@contextmanager
def _rollback_on_error(state: LabState, say: Say) -> Iterator[None]:
    """Ctrl-C or any error while building: remove what was made, then report."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except BaseException as exc:
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        say(f"setting up lab {state.name!r} {what}; removing what it had created")
        problems = teardown(state, say=lambda _: None)
        for p in problems:
            say(f"  could not remove: {p}")
        if isinstance(exc, LabError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, subprocess.CalledProcessError):
            detail = (
                (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
            )
            raise LabError(f"`{' '.join(map(str, exc.cmd))}` failed: {(detail or '').strip()}") from None
        if isinstance(exc, NetnsError | OSError):
            raise LabError(str(exc)) from None
        raise LabError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _check_existing(root: Path, name: str) -> LabState | None:
    """Refuse when this lab is up or its names are taken by others; return the state of a stale one.

    Stale: the lab's state says it exists but its namespace is gone or none of its processes runs (a
    crash, a reboot). It is removed only once every other check has passed.
    """
    old = load_state(root)
    if old is not None and is_alive(old):
        since = time.strftime("%H:%M", time.localtime(old.created))
        flag = "" if name == "netboot-lab" else f" --name {name}"
        raise LabError(
            f"lab {name!r} is already up (since {since}, {len(old.vms)} VM(s), state in {root}): "
            f"`netboot lab down{flag}` first, or use another --name"
        )
    if old is None and root.exists() and any(root.iterdir()):
        raise LabError(f"{root} exists but holds no lab state; remove it or choose another --name", 2)
    ours = set(old.namespaces) if old is not None else set()
    for ns in (name, f"{name}-dhcp"):
        if ns not in ours and netns_exists(ns):
            raise LabError(
                f"a network namespace named {ns!r} already exists and this lab did not create it; "
                f"choose another --name (or remove it: ip netns del {ns})",
                2,
            )
    return old


def _build(state: LabState, opts: UpOptions, say: Say) -> None:
    root = state.dir
    lab = Namespace(state.name)
    state.namespaces.append(lab.name)
    state.save()
    lab.create()
    state.links.append(BRIDGE)
    state.save()
    lab.ip("link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
    lab.ip("addr", "add", f"{SERVER_IP}/24", "dev", BRIDGE)
    lab.ip("link", "set", BRIDGE, "up")

    if opts.proxy:
        dhcp_ns = Namespace(f"{state.name}-dhcp")
        state.namespaces.append(dhcp_ns.name)
        state.links.append("dhcp0")
        state.save()
        dhcp_ns.create()
        lab.ip("link", "add", "dhcp0", "type", "veth", "peer", "name", "eth0", "netns", dhcp_ns.name)
        lab.ip("link", "set", "dhcp0", "master", BRIDGE)
        lab.ip("link", "set", "dhcp0", "up")
        dhcp_ns.ip("addr", "add", f"{DHCP_SERVER_IP}/24", "dev", "eth0")
        dhcp_ns.ip("link", "set", "eth0", "up")

    for i in range(1, opts.vms + 1):
        name = f"vm{i}"
        vm_dir = root / "vms" / name
        state.vms.append(
            VmRecord(
                name=name,
                mac=mac_of(i),
                hostname=f"lab-vm{i}",
                tap=f"tap{i - 1}",
                firmware=opts.firmware,
                dir=str(vm_dir),
                serial_log=str(vm_dir / "serial.log"),
                serial_socket=str(vm_dir / "serial.sock"),
                qemu_log=str(vm_dir / "qemu.log"),
                qmp_socket=str(vm_dir / "qmp.sock"),
                disk=str(vm_dir / "disk.qcow2"),
            )
        )
    for vm in state.vms:
        state.links.append(vm.tap)
        state.save()
        lab.ip("tuntap", "add", vm.tap, "mode", "tap")
        lab.ip("link", "set", vm.tap, "master", BRIDGE)
        lab.ip("link", "set", vm.tap, "up")

    variables = dict(opts.variables)
    if opts.mirror_dir is not None:
        state.mirror_url = f"http://{SERVER_IP}:{MIRROR_PORT}/"
        variables.setdefault("mirror", f"{SERVER_IP}:{MIRROR_PORT}")
        variables.setdefault("mirror_directory", "/")
    config = root / "netboot.yaml"
    config.write_text(_netboot_config(state, opts))
    _register(state, lab, config, variables)
    lab.verify()
    argv = [
        *lab.prefix(),
        *netboot_argv(),
        "serve",
        "--config",
        str(config),
        "--data-dir",
        str(state.netboot_data),
    ]
    _start(state, "netboot", argv, root / "netboot.log", ready="netboot ready", timeout=30)

    if opts.proxy:
        dhcp_ns = Namespace(f"{state.name}-dhcp")
        dhcp_ns.verify()
        argv = [
            *dhcp_ns.prefix(),
            "dnsmasq",
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=eth0",
            "--bind-interfaces",
            "--no-ping",
            f"--dhcp-range={RANGE[0]},{RANGE[1]},1h",
            f"--dhcp-leasefile={root / 'dnsmasq.leases'}",
            f"--pid-file={root / 'dnsmasq.pid'}",
            f"--dhcp-option=option:dns-server,{DHCP_SERVER_IP}",
            "--log-dhcp",
        ]
        _start(state, "dnsmasq", argv, root / "dnsmasq.log", ready="DHCP, IP range", timeout=15)

    if opts.mirror_dir is not None:
        lab.verify()
        argv = [
            *lab.prefix(),
            *python_argv(),
            "-m",
            "http.server",
            "--bind",
            SERVER_IP,
            "--directory",
            str(opts.mirror_dir.resolve()),
            str(MIRROR_PORT),
        ]
        _start(state, "mirror", argv, root / "mirror.log", ready="Serving HTTP", timeout=15)

    if opts.ui_port:
        _start_forwarder(state, opts, say)

    for vm in state.vms:
        vm_dir = Path(vm.dir)
        vm_dir.mkdir(parents=True, exist_ok=True)
        if vm.disk:
            qemu.create_disk(Path(vm.disk), opts.disk_gb)
        spec = qemu.VmSpec(
            name=vm.name,
            mac=vm.mac,
            tap=vm.tap,
            firmware=vm.firmware,
            memory_mb=opts.memory_mb,
            disk=Path(vm.disk) if vm.disk else None,
            serial_log=Path(vm.serial_log),
            serial_socket=Path(vm.serial_socket),
            qmp_socket=Path(vm.qmp_socket) if vm.qmp_socket else None,
            state_dir=vm_dir,
        )
        lab.verify()
        _start(
            state,
            f"qemu:{vm.name}",
            [*lab.prefix(), *qemu.command(spec, accel=state.accel)],
            Path(vm.qemu_log),
            ready=None,
            timeout=1.0,
        )
    state.phase = "up"
    state.save()


def _netboot_config(state: LabState, opts: UpOptions) -> str:
    dhcp = (
        (
            f"  mode: full\n  subnet: {NET}.0/24\n  range: {RANGE[0]}-{RANGE[1]}\n"
            f"  router: {SERVER_IP}\n  dns-servers: [{SERVER_IP}]\n  lease-time: 3600\n"
        )
        if not opts.proxy
        else "  mode: proxy\n"
    )
    return (
        f"# netboot inside lab {state.name!r} (written by `netboot lab up`; removed by `netboot lab down`)\n"
        f"server-ip: {SERVER_IP}\ninterfaces: [{BRIDGE}]\nprofiles-dir: {state.profiles_dir}\n"
        f"dhcp:\n{dhcp}ports:\n  tftp: 69\n  http: {opts.http_port}\nlog:\n  level: INFO\n"
    )


def _register(state: LabState, lab: Namespace, config: Path, variables: Mapping[str, str]) -> None:
    """Register each VM's MAC to the profile (``netboot system add``) and a UI user, in the lab's database.

    Run inside the lab namespace, where the configured interface (br0) exists.
    """
    common = ["--config", str(config), "--data-dir", str(state.netboot_data)]
    state.ui_user, state.ui_password = "admin", secrets.token_urlsafe(12)
    state.save()
    lab.verify()
    _run_netboot(
        lab,
        ["user", "add", state.ui_user, "--role", "admin", "--password-stdin", *common],
        stdin=state.ui_password + "\n",
    )
    for vm in state.vms:
        extra = [arg for key, value in variables.items() for arg in ("--var", f"{key}={value}")]
        _run_netboot(
            lab,
            ["system", "add", vm.mac, "--profile", state.profile, "--hostname", vm.hostname, *extra, *common],
        )


def _run_netboot(lab: Namespace, args: list[str], stdin: str | None = None) -> None:
    argv = [*lab.prefix(), *netboot_argv(), *args]
    try:
        result = subprocess.run(
            argv, input=stdin or "", capture_output=True, text=True, timeout=60, env=child_env()
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"`netboot {' '.join(args[:2])}` did not finish within 60 s") from None
    if result.returncode != 0:
        raise LabError(f"`netboot {' '.join(args[:3])}` failed: {(result.stderr or result.stdout).strip()}")


def _start(
    state: LabState, role: str, argv: list[str], log: Path, *, ready: str | None, timeout: float
) -> None:
    """Start one process, record it at once, and wait (bounded) for its ready line or for it to stay up."""
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = procs.spawn(role, argv, log=log, env=child_env())
    state.procs.append(proc)
    state.save()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.wait_gone(proc, 0.0)
        if not procs.alive(proc):
            raise LabError(f"{role} exited at start; its log ({log}) ends:\n{_tail(log)}")
        if ready is not None and ready in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    if ready is not None:
        raise LabError(
            f"{role} did not report {ready!r} within {timeout:.0f} s; its log ({log}) ends:\n{_tail(log)}"
        )


def _start_forwarder(state: LabState, opts: UpOptions, say: Say) -> None:
    log = state.dir / "ui-forward.log"
    argv = [
        *python_argv(),
        "-m",
        "netboot.lab.forward",
        "--listen",
        f"127.0.0.1:{opts.ui_port}",
        "--netns",
        state.name,
        "--to",
        f"{SERVER_IP}:{opts.http_port}",
    ]
    try:
        _start(state, "ui-forward", argv, log, ready="listening", timeout=10)
    except LabError:
        say(
            f"note: cannot forward 127.0.0.1:{opts.ui_port} to the lab's UI (port in use?): "
            f"{_tail(log, 1).strip()}; use --ui-port N, or reach it inside: "
            f"ip netns exec {state.name} curl http://{SERVER_IP}:{opts.http_port}/"
        )
        proc = state.proc("ui-forward")
        if proc is not None:
            procs.terminate(proc)
            state.procs.remove(proc)
            state.save()
        return
    state.ui_url = f"http://127.0.0.1:{opts.ui_port}/ui/"
    state.save()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty)"


# ------------------------------------------------------------------------------------------ watch


@dataclass
class WatchResult:
    ok: bool
    message: str
    tracker: Tracker


def watch(
    state: LabState,
    files: Files,
    *,
    until: str,
    timeout: float,
    say: Say,
    tty: bool,
    unicode: bool = True,
    started: float | None = None,
    interval: float = 0.5,
) -> WatchResult:
    """Follow every VM until all reached ``until``, a process dies, or ``timeout``. Never blocks longer."""
    tracker = Tracker(state.db_path, [(v.name, v.mac, v.hostname) for v in state.vms], files)
    start = started if started is not None else time.time()
    display = Display(tracker, started=start, tty=tty, write=say, unicode=unicode)
    target = UNTIL[until]
    lab = Namespace(state.name)
    deadline = time.monotonic() + timeout
    leases = state.dir / "dnsmasq.leases"
    while True:
        for vm, stage, row in tracker.poll():
            display.step(vm, stage, row)
        if state.dhcp == "proxy" and leases.exists():
            for line in leases.read_text(errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    tracker.learn_ip(parts[2], parts[1])
            log = state.dir / "dnsmasq.log"
            for mac, ip in installer_acks(log.read_text(errors="replace")) if log.exists() else []:
                step = tracker.mark(mac, "installer", time.time(), f"dnsmasq: DHCPACK {ip} to the installer")
                if step is not None:
                    display.step(*step)
        if tracker.downloading():
            try:
                out = lab.exec("ss", "-tinH", "state", "established", timeout=5, check=False).stdout
                tracker.update_downloads(parse_ss(out, state.http_port), time.time())
            except NetnsError:
                pass
            display.downloads(time.time())
        display.redraw(time.time())
        if tracker.all_reached(target):
            return WatchResult(True, "", tracker)
        dead = [p for p in state.procs if not procs.alive(p)]
        for p in dead:
            procs.wait_gone(p, 0.0)
        if dead:
            logs = "; ".join(f"{p.role} (log {p.log})" for p in dead)
            return WatchResult(False, f"stopped: {logs} exited", tracker)
        if time.monotonic() >= deadline:
            return WatchResult(False, f"timed out after {clock(timeout)}", tracker)
        time.sleep(interval)


def report(state: LabState, result: WatchResult, until: str, started: float, say: Say) -> None:
    """What each VM reached, and how to use the running lab."""
    elapsed = clock(time.time() - started)
    vms = result.tracker.vms.values()
    if result.ok:
        say(f"\nAll {len(state.vms)} VM(s) reached '{LABELS[UNTIL[until]]}' in {elapsed}.")
    else:
        say(f"\nLab {state.name!r}: {result.message} ({elapsed}). Reached so far:")
    for vm in vms:
        stage = LABELS[vm.stage] if vm.stage else "nothing yet"
        say(
            f"  {vm.name}  {vm.hostname:<10} {vm.ip or '-':<14} {stage}"
            + (f"  ({vm.note})" if vm.note else "")
        )
    if state.mirror_url is None and any(vm.has("answer") and not vm.has("done") for vm in vms):
        say(
            "\nThe installer has its answer file. No local package source is configured (--mirror-dir), "
            "and the lab has no route out, so the installer cannot download packages: it stops at its "
            "mirror step. That is as far as this lab goes without a mirror."
        )
    elif state.mirror_url is not None and any(vm.has("answer") and not vm.has("done") for vm in vms):
        say(
            f"\nThe installer has its answer file and takes its packages from the local mirror at "
            f"{state.mirror_url} inside the lab; `netboot lab status` shows 'install done' once it "
            "calls back."
        )
    say(f"\nThe lab keeps running ({state.accel.upper()}{' - slow' if state.accel == 'tcg' else ''}):")
    inside = f"http://{SERVER_IP}:{state.http_port}/ui/"
    login = f"user {state.ui_user}, password {state.ui_password}" if state.ui_user else ""
    if state.ui_url:
        say(f"  UI        {state.ui_url}  ({login}; relayed to {inside} inside the lab)")
    else:
        say(f"  UI        {inside} inside the lab ({login}): e.g. ip netns exec {state.name} curl {inside}")
    flag = "" if state.name == "netboot-lab" else f" --name {state.name}"
    for rec in state.vms:
        say(f"  console   netboot lab console{flag} {rec.name}   (log: {rec.serial_log})")
        say(f"  screen    netboot lab screenshot{flag} {rec.name}")
    say(
        f"  logs      {state.dir}/netboot.log"
        + (f", {state.dir}/dnsmasq.log" if state.dhcp == "proxy" else "")
    )
    say(f"  status    netboot lab status{flag}")
    say(f"  remove    netboot lab down{flag}")


# ------------------------------------------------------------------------------------------- down


def teardown(state: LabState, say: Say) -> list[str]:
    """Stop every recorded process, delete the recorded namespaces, remove the lab directory.

    Returns what could not be removed (empty when all went). Processes are stopped by PID, and only
    while PID and start time still match what was recorded.
    """
    problems: list[str] = []

    def order(p: procs.Proc) -> int:
        return 0 if p.role.startswith("qemu:") else 1 if p.role in ("ui-forward", "mirror") else 2

    for proc in sorted(state.procs, key=order):
        if procs.alive(proc):
            gone = procs.terminate(proc)
            say(
                f"stopped {proc.role} (pid {proc.pid})"
                if gone
                else f"could not stop {proc.role} (pid {proc.pid})"
            )
            if not gone:
                problems.append(f"process {proc.pid} ({proc.role})")
    for name in reversed(state.namespaces):
        if not netns_exists(name):
            continue
        ns = Namespace(name)
        for pid in ns.pids():
            stray = procs.Proc("stray", pid, _start_of(pid), ())
            if procs.terminate(stray):
                say(f"stopped process {pid} found inside namespace {name}")
            else:
                problems.append(f"process {pid} inside namespace {name}")
        ns.delete()
        if netns_exists(name):
            problems.append(f"namespace {name}")
        else:
            links = [x for x in state.links if x] if name == state.name else []
            say(f"removed namespace {name}" + (f" (with {', '.join(links)})" if links else ""))
    root = state.dir
    if (root / STATE_FILE).exists() or root.exists():
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            problems.append(f"directory {root}")
        else:
            say(f"removed {root}")
    return problems


def _start_of(pid: int) -> int:
    st = procs._stat(pid)
    return st[1] if st else -1


def down(data_dir: Path, name: str, say: Say) -> bool:
    """Remove lab ``name``; False when there was none. Raises :class:`LabError` if something remains."""
    check_name(name)
    check_root()
    state = load_state(lab_root(data_dir, name))
    if state is None:
        return False
    problems = teardown(state, say)
    if problems:
        raise LabError("could not remove: " + ", ".join(problems))
    return True


# ----------------------------------------------------------------------------------------- status


def status(data_dir: Path, name: str) -> dict[str, Any] | None:
    """The lab's state with liveness and each VM's furthest stage; None when there is no lab."""
    check_name(name)
    state = load_state(lab_root(data_dir, name))
    if state is None:
        return None
    tracker = Tracker(state.db_path, [(v.name, v.mac, v.hostname) for v in state.vms], files_of(state))
    tracker.poll()
    by_name = {v.name: v for v in tracker.vms.values()}
    namespaces = {n: netns_exists(n) for n in state.namespaces}
    out_procs = [{"role": p.role, "pid": p.pid, "running": procs.alive(p), "log": p.log} for p in state.procs]
    vms = []
    for vm in state.vms:
        prog = by_name[vm.name]
        qemu_proc = state.proc(f"qemu:{vm.name}")
        vms.append(
            {
                "name": vm.name,
                "mac": vm.mac,
                "hostname": vm.hostname,
                "ip": prog.ip,
                "firmware": vm.firmware,
                "stage": prog.stage,
                "stage_label": LABELS[prog.stage] if prog.stage else None,
                "reached": prog.reached,
                "note": prog.note,
                "running": bool(qemu_proc and procs.alive(qemu_proc)),
                "serial_log": vm.serial_log,
                "tap": vm.tap,
            }
        )
    healthy = all(namespaces.values()) and all(p["running"] for p in out_procs)
    return {
        "name": state.name,
        "dir": state.root,
        "phase": state.phase,
        "created": state.created,
        "up": healthy and state.phase == "up",
        "firmware": state.firmware,
        "profile": state.profile,
        "dhcp": state.dhcp,
        "accel": state.accel,
        "server": f"http://{SERVER_IP}:{state.http_port}/",
        "ui_user": state.ui_user,
        "ui_password": state.ui_password,
        "ui": state.ui_url,
        "mirror": state.mirror_url,
        "namespaces": namespaces,
        "links": state.links,
        "processes": out_procs,
        "vms": vms,
    }


def files_of(state: LabState) -> Files:
    return Files(frozenset(state.kernel_names), frozenset(state.initrd_names), state.download_bytes)


def find_vm(data_dir: Path, name: str, vm: str) -> tuple[LabState, VmRecord]:
    check_name(name)
    state = load_state(lab_root(data_dir, name))
    if state is None:
        raise LabError(f"no lab {name!r} is up (netboot lab up)")
    record = state.vm(vm) or (state.vm(f"vm{vm}") if vm.isdigit() else None)
    if record is None:
        raise LabError(f"lab {name!r} has no VM {vm!r}; it has {', '.join(v.name for v in state.vms)}", 2)
    return state, record

"""Building a lab: the namespaces, bridge and taps, then netboot, dnsmasq, the mirror, the UI relay, the VMs.

Every name and process is recorded in the lab's state before it is created or started (see
:mod:`netboot.lab.state`), so a teardown after any failure removes exactly what was made.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from netboot import qemu
from netboot.lab import procs
from netboot.lab.base import (
    BRIDGE,
    DHCP_SERVER_IP,
    MIRROR_PORT,
    NET,
    RANGE,
    SERVER_IP,
    LabError,
    Say,
    UpOptions,
    child_env,
    mac_of,
    netboot_argv,
    python_argv,
    tail,
)
from netboot.lab.netns import Namespace
from netboot.lab.state import LabState, VmRecord


def build(state: LabState, opts: UpOptions, say: Say) -> None:
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
            raise LabError(f"{role} exited at start; its log ({log}) ends:\n{tail(log)}")
        if ready is not None and ready in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    if ready is not None:
        raise LabError(
            f"{role} did not report {ready!r} within {timeout:.0f} s; its log ({log}) ends:\n{tail(log)}"
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
            f"{tail(log, 1).strip()}; use --ui-port N, or reach it inside: "
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

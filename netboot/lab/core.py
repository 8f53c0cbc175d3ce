"""``netboot lab``: a private network in a namespace, netboot serving it, QEMU VMs booting from it.

Layout (nothing joins it to the host's interfaces; there is no route out)::

    namespace <name>:  br0 10.99.0.1/24  <- netboot serve (DHCP full or ProxyDHCP, TFTP, HTTP :8080)
                       tap0..tapN-1 on br0 <- one QEMU VM each (also run inside the namespace)
                       dhcp0 on br0 ─veth─ namespace <name>-dhcp: eth0 10.99.0.2/24 <- dnsmasq (--proxy only)

Everything it creates is recorded first in ``<data-dir>/lab/<name>/state.json`` (see
:mod:`netboot.lab.state`), so :func:`down` removes exactly that, and a failed :func:`up` removes what it
had made before reporting the error.

This module is the lab's entry points (:func:`up`, :func:`status`, :func:`find_vm`; :func:`down`,
:func:`watch` and :func:`report` from their modules); the work is in :mod:`netboot.lab.checks`,
:mod:`netboot.lab.build`, :mod:`netboot.lab.watch` and :mod:`netboot.lab.teardown` over
:mod:`netboot.lab.base`.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netboot import qemu
from netboot.lab import procs
from netboot.lab.base import (
    MAX_VMS,
    SERVER_IP,
    LabError,
    Say,
    UpOptions,
    check_name,
    check_root,
    default_profiles_dir,
    files_of,
    is_alive,
    lab_root,
    load_state,
)
from netboot.lab.build import build
from netboot.lab.checks import choose_accel, missing_packages, resolve_profile
from netboot.lab.netns import NetnsError
from netboot.lab.netns import exists as netns_exists
from netboot.lab.progress import LABELS, UNTIL, Files, Tracker
from netboot.lab.state import LabState, VmRecord
from netboot.lab.teardown import down, teardown
from netboot.lab.watch import WatchResult, report, watch

__all__ = [
    # what the CLI and the tests use, from here as before the lab had modules by job
    "LabError",
    "UpOptions",
    "WatchResult",
    "default_profiles_dir",
    "down",
    "find_vm",
    "report",
    "resolve_profile",
    "status",
    "up",
    "watch",
]


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
        build(state, opts, say)
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


def find_vm(data_dir: Path, name: str, vm: str) -> tuple[LabState, VmRecord]:
    check_name(name)
    state = load_state(lab_root(data_dir, name))
    if state is None:
        raise LabError(f"no lab {name!r} is up (netboot lab up)")
    record = state.vm(vm) or (state.vm(f"vm{vm}") if vm.isdigit() else None)
    if record is None:
        raise LabError(f"lab {name!r} has no VM {vm!r}; it has {', '.join(v.name for v in state.vms)}", 2)
    return state, record

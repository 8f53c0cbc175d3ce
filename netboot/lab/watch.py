"""Following a lab's VMs until they reach a stage, and the summary printed after.

Progress comes from netboot's own database, dnsmasq's lease file and log (``--proxy``), and ``ss`` for the
downloads in flight (see :mod:`netboot.lab.progress`); nothing here changes the lab.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from netboot.lab import procs
from netboot.lab.base import SERVER_IP, Say
from netboot.lab.netns import Namespace, NetnsError
from netboot.lab.progress import (
    LABELS,
    UNTIL,
    Display,
    Files,
    Tracker,
    clock,
    installer_acks,
    parse_ss,
)
from netboot.lab.state import LabState


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

"""Removing a lab: its processes (by PID and start time only), its namespaces, its directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from netboot.lab import procs
from netboot.lab.base import LabError, Say, check_name, check_root, lab_root, load_state
from netboot.lab.netns import Namespace
from netboot.lab.netns import exists as netns_exists
from netboot.lab.state import STATE_FILE, LabState


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

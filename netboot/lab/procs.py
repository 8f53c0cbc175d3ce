"""Processes the lab started, identified so that ``down`` stops exactly those and nothing else.

A PID alone is not an identity: after a crash or a reboot the number may belong to someone else. Each
process is recorded with its start time (``/proc/PID/stat`` field 22, clock ticks since boot), and a
recorded process counts as ours only while both still match. Stopping is by PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Proc:
    """One process the lab started: ``role`` is ``netboot``, ``dnsmasq``, ``qemu:vm1``, ``ui-forward``..."""

    role: str
    pid: int
    start: int
    argv: tuple[str, ...]
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["argv"] = list(self.argv)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proc:
        return cls(
            role=str(data["role"]),
            pid=int(data["pid"]),
            start=int(data["start"]),
            argv=tuple(str(a) for a in data.get("argv", ())),
            log=data.get("log"),
        )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def alive(proc: Proc) -> bool:
    """True while the recorded process runs (same PID *and* start time; zombies count as gone)."""
    st = _stat(proc.pid)
    return st is not None and st[1] == proc.start and st[0] not in "ZX"


def spawn(role: str, argv: Sequence[str], *, log: Path | None, env: Mapping[str, str] | None = None) -> Proc:
    """Start ``argv`` detached (own session, stdin from /dev/null, output to ``log``) and record it."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    st = _stat(child.pid)
    if st is None:  # already gone: keep a record that can never match a live process
        return Proc(role, child.pid, -1, tuple(argv), str(log) if log else None)
    return Proc(role, child.pid, st[1], tuple(argv), str(log) if log else None)


def terminate(proc: Proc, *, timeout: float = 10.0) -> bool:
    """SIGTERM ``proc`` if it is still ours, SIGKILL after ``timeout``; True once it is gone."""
    if not alive(proc):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    if wait_gone(proc, timeout):
        return True
    if alive(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    return wait_gone(proc, 5.0)


def wait_gone(proc: Proc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc.pid)
        if not alive(proc):
            return True
        time.sleep(0.05)
    return not alive(proc)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)

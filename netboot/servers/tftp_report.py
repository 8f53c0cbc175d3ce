"""What the TFTP server says about each request: one INFO line and one ``tftp`` event, whatever became of it.

Names and options are chosen by the client, so every string is escaped and clipped before it reaches a log
line or the database (:func:`printable`).
"""

from __future__ import annotations

import logging
from typing import Any

from netboot.events import Event, EventRecorder
from netboot.protocol.tftp import Address, ErrorCode, Outcome

log = logging.getLogger("netboot.tftp")


def report(recorder: EventRecorder, addr: Address, filename: str, outcome: Outcome, *, sent: int,
           size: int | None, options: tuple[tuple[str, str], ...] | None,
           negotiated: tuple[tuple[str, str], ...] | None, duration: float, error: tuple[int, str] | None,
           retransmits: int, wall: float) -> None:
    """One INFO line and one ``tftp`` event per request, whatever became of it."""
    name = printable(filename)
    ip, port = str(addr[0]), int(addr[1])
    requested = dict(options or ())
    accepted = dict(negotiated or ())
    log.info("%s:%d %s %s bytes=%d/%s options=%s negotiated=%s duration=%.3fs%s", ip, port, name,
             outcome.value, sent, "-" if size is None else size, _options_text(requested),
             _options_text(accepted), duration, f" error={error[0]}:{error[1]}" if error else "")
    detail: dict[str, Any] = {
        "file": name,
        "outcome": outcome.value,
        "bytes": sent,
        "size": size,
        "options": requested,
        "negotiated": accepted,
        "duration": round(duration, 6),
        "client_port": port,
        "retransmits": retransmits,
    }
    if error:
        detail["error_code"], detail["error"] = error
    try:
        recorder.record(Event("tftp", _summary(name, outcome, sent, error), client_ip=ip, time=wall,
                              detail=detail))
    except Exception:
        log.exception("recording the TFTP event for %s failed", ip)


def _summary(name: str, outcome: Outcome, sent: int, error: tuple[int, str] | None) -> str:
    if outcome is Outcome.COMPLETE:
        return f"{name}: sent {sent} bytes"
    if outcome is Outcome.ABORTED and error and error[0] == ErrorCode.OPTION_REFUSED:
        return f"{name}: client stopped after the option reply (size probe)"
    why = f" ({error[1]})" if error else ""
    return f"{name}: {outcome.value}{why}"


def _options_text(options: dict[str, str]) -> str:
    return ",".join(f"{k}={printable(v, 32)}" for k, v in options.items()) or "-"


def printable(text: str, limit: int = 256) -> str:
    """A client-chosen string safe for one log line and the database: escaped, surrogate-free, bounded."""
    clipped = text[:limit]
    safe = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in clipped)
    return safe + ("..." if len(text) > limit else "")

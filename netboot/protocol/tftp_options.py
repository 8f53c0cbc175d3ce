"""TFTP option negotiation (RFC 2347/2348/2349/7440): what a request asked for against the server's limits.

Unknown or malformed options are left out of the OACK, never refused: a client that asked for something odd
still gets its file, in the defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netboot.protocol.tftp_packets import (
    DEFAULT_BLKSIZE,
    MAX_BLKSIZE,
    MAX_TIMEOUT,
    MAX_WINDOWSIZE,
    MIN_BLKSIZE,
    MIN_TIMEOUT,
    Options,
)

_DIGITS = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Server policy for every transfer.

    ``max_blksize`` is where a path-MTU clamp goes (see :func:`blksize_for_mtu`); ``timeout`` is the first
    retransmission delay when the client negotiates none, doubled per retry up to ``max_timeout`` (or the
    client's own value if larger), for at most ``retries`` retransmissions of the same packet or window.
    """

    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64
    timeout: float = 1.0
    max_timeout: float = 8.0
    retries: int = 5


@dataclass(frozen=True, slots=True)
class Negotiation:
    """What a transfer will use, and the options to acknowledge (none: no OACK, DATA 1 straight away)."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float = 1.0
    accepted: Options = ()


def _number(value: str, low: int, high: int) -> int | None:
    """A plain decimal in ``low..high`` or None: ``abc``, ``1_468``, `` 8`` and ``-1`` are all malformed."""
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def negotiate(options: Options, size: int, limits: Limits) -> Negotiation:
    """Apply RFC 2347/2348/2349/7440 to a request's options. Unknown or malformed options are left out."""
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, limits.timeout
    accepted: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in options:
        if name in seen:
            continue
        seen.add(name)
        if name == "blksize" and (asked := _number(value, MIN_BLKSIZE, 10**10)) is not None:
            blksize = max(MIN_BLKSIZE, min(asked, MAX_BLKSIZE, limits.max_blksize))
            accepted.append((name, str(blksize)))
        elif name == "tsize" and size > 0 and _number(value, 0, 10**10) is not None:
            # Omitted for empty content: curl treats "tsize 0" in an OACK as illegal and aborts.
            accepted.append((name, str(size)))
        elif name == "timeout" and (seconds := _number(value, MIN_TIMEOUT, MAX_TIMEOUT)) is not None:
            timeout = float(seconds)
            accepted.append((name, str(seconds)))
        elif name == "windowsize" and (asked := _number(value, 1, MAX_WINDOWSIZE)) is not None:
            windowsize = max(1, min(asked, limits.max_windowsize))
            accepted.append((name, str(windowsize)))
    return Negotiation(blksize, windowsize, timeout, tuple(accepted))

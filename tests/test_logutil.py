"""The daemon's text log format: the fast formatter writes exactly what the standard one would."""

from __future__ import annotations

import logging
import sys

from netboot.logutil import TEXT_DATEFMT, TEXT_FORMAT, TextFormatter


def record(created: float, msg: str, *args: object, level: int = logging.INFO,
           exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    made = logging.LogRecord("netboot.dhcp", level, __file__, 1, msg, args or None, info)
    made.created = created
    return made


def test_the_fast_formatter_writes_what_the_standard_one_writes() -> None:
    fast, standard = TextFormatter(), logging.Formatter(TEXT_FORMAT, TEXT_DATEFMT)
    base = 1_764_820_000.0
    cases = [
        record(base + 0.1, "%s (%s): OFFER %s", "52:54:00:be:0c:01", "0.0.0.0", "ipxe.efi"),
        record(base + 0.9, "same second, another line"),
        record(base + 1.2, "the next second, %d%%", 50, level=logging.WARNING),
        record(base + 3600.5, "an hour on: ünïcode and no args"),
        record(base + 3601.0, "with a traceback", level=logging.ERROR, exc=True),
        record(base + 3599.0, "back in time (a clock step)"),
    ]
    for made in cases:
        expected = standard.format(made)
        made.exc_text = None  # the standard formatter caches the traceback text on the record
        assert fast.format(made) == expected

"""Logging set-up and a rate limiter for lines a hostile network could flood us with."""

from __future__ import annotations

import json
import logging
import sys
import time


class RateLimited:
    """Let at most ``burst`` lines through per ``period`` seconds; count the rest and say so later."""

    def __init__(self, logger: logging.Logger, *, burst: int = 20, period: float = 10.0) -> None:
        self._logger, self._burst, self._period = logger, burst, period
        self._window_start = 0.0
        self._sent = 0
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._window_start >= self._period:
            if self._suppressed:
                self._logger.warning(
                    "... %d more like this suppressed in the last %.0f s", self._suppressed, self._period
                )
            self._window_start, self._sent, self._suppressed = now, 0, 0
        if self._sent < self._burst:
            self._sent += 1
            self._logger.warning(msg, *args)
        else:
            self._suppressed += 1


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


#: the text format's layout and time, as ``logging.Formatter`` spells them (:class:`TextFormatter`)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
TEXT_DATEFMT = "%Y-%m-%d %H:%M:%S"


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, byte for byte, with the time string made once a second: DHCP and HTTP log a
    line per answer, and ``Formatter.format`` made the time (``localtime`` and ``strftime``) and filled a
    ``%`` template from the record's dict for each. Records with a traceback or a stack go the standard
    way. A handler formats under its lock, so the cached second is never shared between two threads."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, TEXT_DATEFMT)
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(TEXT_DATEFMT, self.converter(record.created))
            self._second = second
        return f"{self._stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    # Neither format shows a thread, a process or a source line, and not collecting them makes a record
    # about a third cheaper (the logging HOWTO's "Optimization"): DHCP and HTTP log a line per answer,
    # and in a ProxyDHCP answer that line was a third of the CPU.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("waitress").setLevel(max(logging.WARNING, root.level))
    # waitress's "Task queue depth is N" warnings stay: they name no machine, but silencing them made the
    # rendered boot script 5x slower at 50 connections (docs/performance.md, "waitress's I/O loop")

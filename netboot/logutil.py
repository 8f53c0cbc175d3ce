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
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("waitress").setLevel(max(logging.WARNING, root.level))

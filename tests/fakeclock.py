"""A clock a test sets by hand, for code that takes its time from a callable (``clock=``) or from a
patched ``time.time``."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

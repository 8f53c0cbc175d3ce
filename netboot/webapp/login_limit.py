"""Growing delays after failed sign-ins, per source address, per user name and per known browser.

Why delays and not a lock: a lock on a user name lets anyone who knows the name keep its owner out. Here the
first :attr:`LoginLimiter.free` failures under a key cost nothing (typos), then each failure makes the key
wait ``base * 2**k`` seconds before the next try, up to a cap per kind of key:

* ``ip:<address>``: the source; capped at 5 min. A guesser from a few addresses is slowed to one guess per
  5 minutes per address, whatever names it tries.
* ``user:<name>``: the name, from anywhere; capped at **30 s**, so its owner, signing in from another
  address, waits at most 30 s, however long the attack on the name has gone on.
* ``device:<id>``: a browser that signed in as that name before carries a signed device cookie
  (:mod:`netboot.webapp.auth`); it is limited under its own key instead of the name's, so a guesser with
  many addresses that keeps the name's delay running all the time still cannot keep its owner out (only
  the owner's own failures, or the owner's address, can slow that browser down).

While a key waits, tries under it are refused (429) without checking the password, and do not count as
failures. A key forgets its failures an hour after its last one.

Memory is bounded: one table per kind of key, each of at most ``max_keys`` entries. When a table is full,
the entries that have forgotten go first, then the tenth with the fewest failures: a flood of junk names
or addresses (one failure each) evicts other junk, never the state of a name under a real attack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: the most a key kind makes a sign-in wait, in seconds
CAPS = {"ip": 300.0, "user": 30.0, "device": 300.0}


@dataclass(slots=True)
class _Record:
    fails: int
    last: float  # time of the last failure
    reported: int = 0  # the failure count whose delay has already been audited


class LoginLimiter:
    """Growing delays per key (``kind:value``); thread-safe, bounded (see the module docs)."""

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        caps: dict[str, float] | None = None,
        forget: float = 3600.0,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.forget, self.max_keys = free, base, forget, max_keys
        self.caps = dict(CAPS if caps is None else caps)
        self.clock = clock
        self._tables: dict[str, dict[str, _Record]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------- the rule

    def delay(self, kind: str, fails: int) -> float:
        """How long a key of ``kind`` with ``fails`` failures waits after its last one."""
        if fails <= self.free:
            return 0.0
        cap = self.caps.get(kind, max(self.caps.values(), default=300.0))
        return min(self.base * 2.0 ** min(fails - self.free - 1, 64), cap)

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        kind, _, value = key.partition(":")
        return kind, value

    def _live(self, key: str, now: float) -> _Record | None:
        kind, value = self._split(key)
        table = self._tables.get(kind)
        record = table.get(value) if table is not None else None
        if record is None:
            return None
        if now - record.last > self.forget:
            del self._tables[kind][value]
            return None
        return record

    def _wait(self, key: str, record: _Record, now: float) -> float:
        return max(0.0, record.last + self.delay(self._split(key)[0], record.fails) - now)

    # ----------------------------------------------------------------------------------- the calls

    def retry_after(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until a sign-in may be tried under every key (0: now)."""
        now = self.clock() if now is None else now
        with self._lock:
            waits = [self._wait(k, r, now) for k in keys if (r := self._live(k, now)) is not None]
        return max(waits, default=0.0)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        """Count one failed sign-in under each key."""
        now = self.clock() if now is None else now
        with self._lock:
            for key in keys:
                record = self._live(key, now)
                if record is None:
                    kind, value = self._split(key)
                    table = self._tables.setdefault(kind, {})
                    if len(table) >= self.max_keys:
                        self._evict(table, now)
                    table[value] = _Record(1, now)
                else:
                    record.fails += 1
                    record.last = now

    def succeeded(self, keys: list[str]) -> None:
        """A right password: the name's (or browser's) failures are forgotten. A source address keeps its
        record until it forgets: signing in to one's own account must not reset a guesser's delay."""
        with self._lock:
            for key in keys:
                kind, value = self._split(key)
                if kind != "ip":
                    self._tables.get(kind, {}).pop(value, None)

    def first_refusal(self, keys: list[str], now: float | None = None) -> bool:
        """True for the first refused try of each delay (so an audit line is written once per delay, not
        once per refused request: a flood of refused tries cannot flood the audit log)."""
        now = self.clock() if now is None else now
        first = False
        with self._lock:
            for key in keys:
                record = self._live(key, now)
                waiting = record is not None and self._wait(key, record, now) > 0
                if record is not None and waiting and record.reported != record.fails:
                    record.reported = record.fails
                    first = True
        return first

    def failures(self, key: str, now: float | None = None) -> int:
        """The failures a key still remembers (0 when none or forgotten)."""
        now = self.clock() if now is None else now
        with self._lock:
            record = self._live(key, now)
            return record.fails if record is not None else 0

    def _evict(self, table: dict[str, _Record], now: float) -> None:
        """Make room in a full table: the forgotten first, then the least-failed tenth (oldest first)."""
        for value in [v for v, r in table.items() if now - r.last > self.forget]:
            del table[value]
        if len(table) < self.max_keys:
            return
        ranked = sorted(table.items(), key=lambda item: (item[1].fails, item[1].last))
        for value, _ in ranked[: max(1, self.max_keys // 10)]:
            del table[value]

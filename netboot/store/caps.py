"""What an anonymous client on the install network can make the store keep, and for how long.

Any machine that broadcasts a DISCOVER or fetches ``/boot.ipxe?mac=...`` with a MAC netboot has never seen
becomes a *discovered* system, and every boot step becomes an event. Without bounds a flood of random MACs
fills the database and slows every list and every boot. :class:`StoreLimits` carries the bounds (the
``limits`` section of the configuration; the defaults here are the configuration's), and
:class:`DiscoveryGate` is the per-minute one: a token bucket over the times the sightings carry, so the same
sightings always give the same answer (tests pass the time, the daemon passes the clock's).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("netboot.store")

#: seconds between two "not stored" log lines (the refusals in between are counted into the next one)
REFUSAL_LOG_INTERVAL = 60.0


class LimitSettings(Protocol):
    """The configuration's ``limits`` as the store reads it (:class:`netboot.config.LimitsConfig`)."""

    @property
    def discovered_per_minute(self) -> int: ...

    @property
    def discovered_max(self) -> int: ...

    @property
    def events_max(self) -> int: ...

    @property
    def event_retention_days(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Caps on discovered machines and events (the defaults are the configuration's)."""

    #: new discovered machines stored per minute; past it they are served as unknown but not stored
    discovered_per_minute: int = 120
    #: discovered machines kept; past it the ones seen longest ago are forgotten (never a registered one)
    discovered_max: int = 10000
    #: events kept; past it the oldest are removed
    events_max: int = 500000
    #: events older than this are removed
    event_retention_days: int = 30

    @classmethod
    def of(cls, settings: LimitSettings) -> StoreLimits:
        """The store's limits from the configuration's ``limits`` section."""
        return cls(
            discovered_per_minute=settings.discovered_per_minute,
            discovered_max=settings.discovered_max,
            events_max=settings.events_max,
            event_retention_days=settings.event_retention_days,
        )

    @property
    def event_retention_seconds(self) -> float:
        return self.event_retention_days * 86400.0


class DiscoveryGate:
    """How many new MACs may become discovered systems now: ``per_minute`` a minute, in bursts up to that.

    A token bucket rather than a window of admission times: constant memory and time whatever the flood.
    Thread-safe (the DHCP thread's group commit and the HTTP threads share one gate). Refusals are logged
    at most once a :data:`REFUSAL_LOG_INTERVAL`, with how many there were since the last line.
    """

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._tokens = self._capacity
        self._last: float | None = None
        self._refused = 0
        self._logged: float | None = None
        self._lock = threading.Lock()

    def admit(self, wanted: int, now: float) -> int:
        """How many of ``wanted`` new machines seen at ``now`` may be stored (the first ones); takes them."""
        if wanted <= 0:
            return 0
        with self._lock:
            if self._last is not None and now > self._last:
                self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._per_second)
            if self._last is None or now > self._last:  # sightings handled out of order never refill twice
                self._last = now
            granted = min(wanted, int(self._tokens))
            self._tokens -= granted
            refused = wanted - granted
            if refused:
                self._refused += refused
                if self._logged is None or now - self._logged >= REFUSAL_LOG_INTERVAL or now < self._logged:
                    log.warning(
                        "more than %d new MACs a minute seen booting (limits.discovered_per_minute): "
                        "%d not stored as discovered machines (they are served as unknown)",
                        int(self._capacity),
                        self._refused,
                    )
                    self._refused = 0
                    self._logged = now
            return granted

"""The one event recorder: what each machine did, phase by phase.

Servers report what they saw (a DHCP decision, a TFTP transfer, an HTTP fetch, an answer file, an install
callback) as an :class:`Event`. TFTP and HTTP often know only the client's IP, so the recorder fills in the
MAC from the most recent DHCP event for that IP. Storage is behind :class:`EventSink` so the pure layers and
tests need no database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from netboot.mac import MacAddress


@dataclass(frozen=True, slots=True)
class Event:
    """One step of one machine's boot. ``phase`` is one of :data:`PHASES`."""

    phase: str
    summary: str
    mac: MacAddress | None = None
    client_ip: str | None = None
    time: float = field(default_factory=time.time)
    detail: Mapping[str, Any] = field(default_factory=dict)


#: The phases a machine goes through, in boot order.
PHASES = ("dhcp", "tftp", "http", "boot-script", "answer-file", "install-done", "discovered", "admin")


class EventSink(Protocol):
    """Where finished events go (the store, a list in tests)."""

    def write(self, event: Event) -> None: ...


#: addresses remembered per MAC (the firmware's, iPXE's and the installer's leases can differ)
ADDRESSES_PER_MAC = 4


class EventRecorder:
    """Attributes events to MACs and hands them to a sink. Thread-safe; cheap on the hot path.

    It also remembers which addresses each MAC used in its own DHCP exchanges (:meth:`learn`), newest
    first: the boot core binds install tokens to them (:meth:`addresses_of`). Only DHCP teaches that; an
    HTTP request naming a MAC only labels later events from its address (:meth:`attribute`), so a
    neighbour that claims a MAC gains nothing by it.
    """

    def __init__(self, sink: EventSink, *, ip_memory: int = 65536) -> None:
        self._sink = sink
        self._mac_by_ip: dict[str, MacAddress] = {}
        self._ips_by_mac: dict[MacAddress, tuple[str, ...]] = {}
        self._ip_memory = ip_memory
        self._lock = threading.Lock()

    def learn(self, ip: str, mac: MacAddress) -> None:
        """``mac`` used ``ip`` in its own DHCP exchange: attribute events, and bind its tokens there."""
        with self._lock:
            self._attribute(ip, mac)
            if len(self._ips_by_mac) >= self._ip_memory and mac not in self._ips_by_mac:
                self._ips_by_mac.pop(next(iter(self._ips_by_mac)))
            known = self._ips_by_mac.get(mac, ())
            self._ips_by_mac[mac] = (ip, *(a for a in known if a != ip))[:ADDRESSES_PER_MAC]

    def attribute(self, ip: str, mac: MacAddress) -> None:
        """Label later TFTP/HTTP events from ``ip`` with ``mac`` (no authority: anyone may claim a MAC)."""
        with self._lock:
            self._attribute(ip, mac)

    def _attribute(self, ip: str, mac: MacAddress) -> None:
        if len(self._mac_by_ip) >= self._ip_memory and ip not in self._mac_by_ip:
            self._mac_by_ip.pop(next(iter(self._mac_by_ip)))
        self._mac_by_ip[ip] = mac

    def addresses_of(self, mac: MacAddress) -> tuple[str, ...]:
        """The addresses ``mac`` used in its DHCP exchanges seen since start, newest first."""
        with self._lock:
            return self._ips_by_mac.get(mac, ())

    def mac_for(self, ip: str | None) -> MacAddress | None:
        if ip is None:
            return None
        with self._lock:
            return self._mac_by_ip.get(ip)

    def record(self, event: Event) -> Event:
        """Fill in the MAC when only the IP is known, write the event, and return what was written."""
        if event.mac is None and event.client_ip is not None:
            mac = self.mac_for(event.client_ip)
            if mac is not None:
                event = replace(event, mac=mac)
        self._sink.write(event)
        return event


class MemorySink:
    """An :class:`EventSink` that keeps events in a list (tests, and the daemon before the store opens)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def write(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

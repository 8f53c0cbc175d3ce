"""Event persistence: a background writer so recording never blocks a DHCP or TFTP reply.

Servers call :meth:`EventRepo.write` (it only enqueues); one thread inserts queued events in batches.
Events are history, not state: losing the last few on ``kill -9`` is acceptable, losing a lease is not
(leases are written synchronously, see :mod:`netboot.store.leases`).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select

from netboot.events import Event
from netboot.mac import MacAddress
from netboot.plain import plain
from netboot.store.schema import events

log = logging.getLogger("netboot.store")
_STOP = object()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    time: float
    mac: MacAddress | None
    client_ip: str | None
    phase: str
    summary: str
    detail: dict[str, Any]


class EventRepo:
    """Implements :class:`netboot.events.EventSink` over the database."""

    def __init__(self, engine: Engine, *, batch: int = 500) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._batch = batch
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def write(self, event: Event) -> None:
        self._idle.clear()
        self._queue.put(event)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            items = [item]
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [self._row(e) for e in items if isinstance(e, Event)]
            if rows:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(insert(events), rows)
                except Exception:
                    log.exception("could not store %d events", len(rows))
            if self._queue.empty():
                self._idle.set()
            if any(e is _STOP for e in items):
                return

    @staticmethod
    def _row(event: Event) -> dict[str, Any]:
        return {
            "time": event.time,
            "mac": event.mac.hex if event.mac else None,
            "client_ip": event.client_ip,
            "phase": event.phase,
            "summary": event.summary,
            "detail": plain(dict(event.detail)),
        }

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued event is stored (tests and clean shutdown)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
            self._thread = None

    def list(
        self, mac: MacAddress | None = None, *, since_id: int = 0, limit: int = 500
    ) -> list[StoredEvent]:
        """Events oldest first, optionally for one MAC and only those newer than ``since_id``."""
        q = select(events).where(events.c.id > since_id)
        if mac is not None:
            q = q.where(events.c.mac == mac.hex)
        q = q.order_by(events.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            StoredEvent(
                id=r["id"],
                time=r["time"],
                mac=MacAddress(r["mac"]) if r["mac"] else None,
                client_ip=r["client_ip"],
                phase=r["phase"],
                summary=r["summary"],
                detail=dict(r["detail"]),
            )
            for r in reversed(rows)
        ]

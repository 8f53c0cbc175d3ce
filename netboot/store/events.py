"""Event persistence: a background writer so recording never blocks a DHCP or TFTP reply.

Servers call :meth:`EventRepo.write` (it only enqueues); one thread inserts queued events in batches.
Events are history, not state: losing the last few on ``kill -9`` is acceptable, losing a lease is not
(leases are written synchronously, see :mod:`netboot.store.leases`, and so is every state change such as
an install's ``/done``).

The writer lingers: once an event arrives it waits up to :data:`LINGER` seconds for more before it
commits, so a boot storm costs one durable transaction per window rather than one per event. A
transaction's fixed cost (its fsync, the count and the prune) is about ten times an event's own insert, and
with one event per transaction it was half of what a ProxyDHCP answer cost (docs/performance.md). So an
event is durable at most :data:`LINGER` seconds (plus its transaction) after it happened, and ``kill -9``
loses at most that window of events. :meth:`EventRepo.wait_idle` and :meth:`EventRepo.close` cut the
wait short.

The same thread keeps the table within :class:`~netboot.store.caps.StoreLimits`: events older than
``event_retention_days`` and the oldest past ``events_max`` are deleted in the transaction that inserts a
batch, at most ``prune_batch`` rows of each per transaction (over ``ix_events_time``), so a flood costs the
writer a bounded amount of work per batch and no request ever waits for a prune.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select

from netboot.events import Event
from netboot.mac import MacAddress
from netboot.plain import plain
from netboot.store.caps import StoreLimits
from netboot.store.schema import events

log = logging.getLogger("netboot.store")
_STOP = object()
#: queued by :meth:`EventRepo.wait_idle`: commit what is queued now, without lingering
_FLUSH = object()
#: seconds the writer waits, after an event arrives, for more to commit with it: the kill -9 window
LINGER = 0.25
#: seconds between two counts of the table (between them the writer keeps its own tally; other processes,
#: such as the CLI, also add events)
RECOUNT_INTERVAL = 600.0


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

    def __init__(
        self,
        engine: Engine,
        limits: StoreLimits | None = None,
        *,
        batch: int = 1000,
        prune_batch: int = 5000,
        linger: float = LINGER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._limits = limits or StoreLimits()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._batch = batch
        self._linger = linger
        self._prune_batch = prune_batch
        self._clock = clock
        #: rows in the table as the writer reckons (None: not counted yet), and when it last counted
        self._count: int | None = None
        self._counted = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        #: set by :meth:`wait_idle` and :meth:`close`: the writer's linger ends now
        self._hurry = threading.Event()
        #: the last batch was full: more is queued, so the next is taken without lingering
        self._backlog = False

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
            items = self._gather()
            rows = [self._row(e) for e in items if isinstance(e, Event)]
            try:
                if rows:
                    self._store(rows)
            except Exception:
                log.exception("could not store %d events", len(rows))
            if self._queue.empty():
                self._idle.set()
            if any(e is _STOP for e in items):
                return

    def _gather(self) -> list[object]:
        """The next batch: what is queued :data:`LINGER` after its first event, up to ``batch`` of them.

        The writer sleeps through the window instead of waiting on the queue, so an event's ``put`` never
        wakes it: waking the writer for every event cost the request or packet that recorded it a thread
        switch (about as much as the rest of recording). A flush or stop request (:meth:`wait_idle`,
        :meth:`close`) ends the sleep; a full batch means a backlog, and the next one is taken at once.
        """
        items = [self._queue.get()]
        if items[0] is not _STOP and items[0] is not _FLUSH and not self._backlog:
            self._hurry.wait(self._linger)
        self._hurry.clear()
        while len(items) < self._batch and items[-1] is not _STOP and items[-1] is not _FLUSH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._backlog = len(items) >= self._batch
        return items

    def _store(self, rows: list[dict[str, Any]]) -> None:
        """Insert a batch and prune, in one transaction, then again (pruning only) while a prune was cut
        short by ``prune_batch``: a backlog (a lowered cap, a long-stopped daemon) drains in steps."""
        cutoff = self._clock() - self._limits.event_retention_seconds
        rows = [r for r in rows if r["time"] >= cutoff]  # already past retention: never stored
        while True:
            with self._engine.begin() as conn:
                before = self._tally(conn)
                if rows:
                    conn.execute(insert(events), rows)
                expired = self._delete_oldest(conn, self._prune_batch, events.c.time < cutoff)
                count = before + len(rows) - expired
                excess = min(self._prune_batch, max(0, count - self._limits.events_max))
                capped = self._delete_oldest(conn, excess) if excess else 0
            self._count = count - capped
            rows = []
            if capped < excess:  # fewer rows than the tally said (another process pruned): count again
                self._count = None
                return
            if expired < self._prune_batch and self._count <= self._limits.events_max:
                return

    def _tally(self, conn: Connection) -> int:
        """The rows in the table now: counted every :data:`RECOUNT_INTERVAL`, else the writer's tally."""
        now = self._clock()
        if self._count is None or not 0 <= now - self._counted < RECOUNT_INTERVAL:
            self._counted = now
            self._count = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
        return self._count

    @staticmethod
    def _delete_oldest(conn: Connection, most: int, *where: ColumnElement[bool]) -> int:
        """Delete up to ``most`` of the oldest events (of those matching ``where``); how many went."""
        oldest = select(events.c.id).where(*where).order_by(events.c.time).limit(most)
        return int(conn.execute(delete(events).where(events.c.id.in_(oldest))).rowcount)

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
        """Store every queued event now, without the writer's linger; block until done or ``timeout``."""
        if not self._idle.is_set():
            self._queue.put(_FLUSH)
            self._hurry.set()
        return self._idle.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._hurry.set()
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

"""The :class:`Store` facade that the daemon, CLI and web app share, and :func:`open_store`."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from netboot.mac import MacAddress
from netboot.store import migrate
from netboot.store.audit import AuditRepo
from netboot.store.caps import StoreLimits
from netboot.store.engine import is_sqlite, make_engine
from netboot.store.errors import StoreError
from netboot.store.events import EventRepo
from netboot.store.leases import LeaseRepo
from netboot.store.sessions import SessionRepo
from netboot.store.systems import SystemRepo
from netboot.store.tokens import TokenRepo
from netboot.store.users import UserRepo

log = logging.getLogger("netboot.store")

#: seconds a sighting (a boot client's "seen" update, a newly discovered machine) may wait to be written
#: when no lease carries it: sightings are history, not worth a reply's wait (:meth:`Store.flush_due`)
SEEN_LINGER = 0.25


class Store:
    """Leases, systems, events and accounts over one engine; discovered machines and events within
    ``limits`` (:mod:`netboot.store.caps`)."""

    def __init__(self, engine: Engine, limits: StoreLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or StoreLimits()
        self.leases = LeaseRepo(engine)
        self.systems = SystemRepo(engine, self.limits)
        self.events = EventRepo(engine, self.limits)
        self.users = UserRepo(engine)
        self.tokens = TokenRepo(engine)
        self.sessions = SessionRepo(engine)
        self.audit = AuditRepo(engine)
        #: the DHCP thread writes staged sightings with its leases (:meth:`leave_sightings_to_caller`)
        self._caller_writes = False
        self._sightings: threading.Thread | None = None
        self._closing = threading.Event()
        self._start_lock = threading.Lock()

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        """Note that a boot client was seen; written within about twice :data:`SEEN_LINGER` seconds.

        See :meth:`netboot.store.systems.SystemRepo.stage_seen` (coalescing; not visible to reads before).
        The DHCP thread writes them in its group commit (:meth:`flush`, :meth:`flush_due`); without one
        (``dhcp: off``, the CLI) a thread of the store's own writes them (:meth:`_write_sightings`).
        """
        self.systems.stage_seen(mac, arch=arch, uuid=uuid, now=now)
        if not self._caller_writes and self._sightings is None:
            with self._start_lock:
                if self._sightings is None and not self._closing.is_set():
                    self._sightings = threading.Thread(target=self._write_sightings, name="sightings",
                                                       daemon=True)
                    self._sightings.start()

    def leave_sightings_to_caller(self) -> None:
        """The caller's group commit (the DHCP thread: :meth:`flush_for_replies`, :meth:`flush_due`) writes
        the staged sightings from now on, beside its leases in one transaction; no thread of the store's
        own competes with it for the database."""
        self._caller_writes = True

    def _write_sightings(self) -> None:
        """Every :data:`SEEN_LINGER` seconds, the sightings due, in a transaction of their own (never the
        staged leases: those are the DHCP thread's to make durable before their ACKs)."""
        while not self._closing.wait(SEEN_LINGER) and not self._caller_writes:
            if not self._sightings_due(SEEN_LINGER):
                continue
            try:
                self._commit(with_leases=False)
            except Exception:
                log.exception("could not store the staged sightings (kept for the next try)")

    def _sightings_due(self, linger: float) -> bool:
        """Whether the oldest staged sighting has waited ``linger`` seconds."""
        since = self.systems.seen_staged_since()
        return since is not None and time.monotonic() - since >= linger

    def _commit(self, *, with_leases: bool) -> int:
        """Write the staged sightings, and the staged leases ``with_leases``, in one transaction; on failure
        everything taken is staged again and the error raised. How many writes it made."""
        leases = self.leases.take() if with_leases else {}
        seen = self.systems.take_seen()
        if not leases and not seen:
            return 0
        try:
            with self.engine.begin() as conn:
                self.leases.write(conn, leases)
                written = self.systems.write_seen(conn, seen)
        except Exception:
            self.leases.restore(leases)
            self.systems.restore_seen(seen)
            raise
        return len(leases) + written

    def flush(self) -> int:
        """The group commit: staged leases and staged sightings in ONE transaction (one fsync).

        Durable when this returns, so the DHCP transport calls it before it sends the ACKs of a batch. On
        failure nothing is written, everything stays staged for the next call, and the error is raised (the
        transport then sends no ACK it could not make durable). Returns how many writes it made (new MACs
        past ``limits.discovered_per_minute`` are dropped, not written).
        """
        return self._commit(with_leases=True)

    def flush_for_replies(self) -> int:
        """What must be durable before a batch of DHCP replies goes out: the staged leases (their ACKs),
        with any staged sightings riding in the same transaction (:meth:`flush`).

        Without a staged lease nothing is written: an OFFER or a ProxyDHCP answer waits for no write, and
        the sightings wait for :meth:`flush_due`.
        """
        return self.flush() if self.leases.pending() else 0

    def flush_due(self, linger: float = SEEN_LINGER) -> int:
        """Write the staged sightings once the oldest has waited ``linger`` seconds; 0 when none is due.

        The DHCP thread calls this after it has sent a batch's replies and at least every ``linger``
        seconds when idle, so a sighting is durable within about twice ``linger`` and a storm costs one
        transaction per window instead of one per batch.
        """
        return self.flush() if self._sightings_due(linger) else 0

    def close(self) -> None:
        """Write what is staged (sightings, events), then release the database."""
        self._closing.set()
        if self._sightings is not None:
            self._sightings.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.exception("could not store the staged sightings at close")
        self.events.close()
        self.systems.close()
        self.engine.dispose()


def open_store(url: str, limits: StoreLimits | None = None) -> Store:
    """Open the database at ``url`` at the schema this code needs, keeping its data within ``limits``
    (default: the configuration's defaults; the daemon passes ``StoreLimits.of(config.limits)``).

    SQLite (the default) is created or upgraded here, at start, so a data directory follows the package
    it runs with. Any other database is only checked: it may be shared by several daemons, so changing its
    schema is the operator's step (``netboot db upgrade``), and a mismatch refuses with that advice.
    """
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot open database {url}: {exc}") from exc
    try:
        if is_sqlite(url):
            migrate.upgrade(engine)
        else:
            migrate.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, limits)

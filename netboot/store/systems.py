"""System persistence: the registered (and discovered) machines.

Booting clients are noted as *seen* (last_seen, arch, UUID; an unknown MAC becomes a ``discovered``
system). The DHCP thread does not write that per packet: it calls :meth:`SystemRepo.stage_seen`, which only
remembers it, and :meth:`netboot.store.Store.flush` writes what was staged together with the batch's leases,
in the one transaction the group commit makes anyway.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.store.schema import systems


class Conflict(ValueError):
    """A uniqueness rule would break (MAC, hostname, IP or token already used); names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def new_token() -> str:
    """A per-system install token: 32 URL-safe random characters."""
    return secrets.token_urlsafe(24)


def _to_system(r: Any) -> System:
    return System(
        mac=MacAddress(r["mac"]),
        profile=r["profile"],
        state=SystemState(r["state"]),
        hostname=r["hostname"],
        ip=IPv4Address(r["ip"]) if r["ip"] else None,
        variables=dict(r["variables"] or {}),
        labels=dict(r["labels"] or {}),
        token=r["token"],
        arch=r["arch"],
        uuid=r["uuid"],
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        local_boot=r["local_boot"],
        token_ip=r["token_ip"],
        token_expires=r["token_expires"],
    )


def _to_row(s: System) -> dict[str, Any]:
    return {
        "mac": s.mac.hex,
        "profile": s.profile,
        "state": s.state.value,
        "hostname": s.hostname,
        "ip": str(s.ip) if s.ip else None,
        "variables": dict(s.variables),
        "labels": dict(s.labels),
        "token": s.token,
        "arch": s.arch,
        "uuid": s.uuid,
        "first_seen": s.first_seen,
        "last_seen": s.last_seen,
        "local_boot": s.local_boot,
        "token_ip": s.token_ip,
        "token_expires": s.token_expires,
        "updated": time.time(),
    }


def _conflict(exc: IntegrityError, s: System) -> Conflict:
    text = str(exc.orig).lower()
    for field, value in (("hostname", s.hostname), ("ip", s.ip), ("token", s.token)):
        if f"systems.{field}" in text or f"({field})" in text:
            return Conflict(field, f"{field} {value} is already used by another system")
    return Conflict("mac", f"system {s.mac} already exists")


@dataclass(frozen=True, slots=True)
class Seen:
    """What is staged for one MAC: the newest arch and UUID reported, the first and last time seen."""

    arch: str | None
    uuid: str | None
    first: float
    last: float

    def then(self, later: Seen) -> Seen:
        """This sighting followed by ``later``: the later values win where there are any."""
        return Seen(
            arch=later.arch or self.arch,
            uuid=later.uuid or self.uuid,
            first=min(self.first, later.first),
            last=max(self.last, later.last),
        )


def _update_seen(excluded: Any) -> dict[str, Any]:
    """The columns a sighting of a known system changes (``excluded`` is the row that was not inserted)."""
    return {
        "last_seen": excluded.last_seen,
        "arch": func.coalesce(excluded.arch, systems.c.arch),
        "uuid": func.coalesce(excluded.uuid, systems.c.uuid),
    }


def write_seen(conn: Connection, staged: Mapping[MacAddress, Seen]) -> None:
    """Record sightings in one statement: update a known system, insert an unknown one as discovered.

    An upsert (``INSERT ... ON CONFLICT (mac) DO UPDATE``, which SQLite and PostgreSQL share) rather than
    a read then a write: no race with a registration made meanwhile by the API or another daemon, and no
    SELECT on the hot path. A known system's arch and UUID are kept where the sighting has none.
    """
    if not staged:
        return
    stmt: sqlite.Insert | postgresql.Insert
    if conn.dialect.name == "sqlite":
        lite = sqlite.insert(systems)
        stmt = lite.on_conflict_do_update(index_elements=[systems.c.mac], set_=_update_seen(lite.excluded))
    elif conn.dialect.name == "postgresql":
        pg = postgresql.insert(systems)
        stmt = pg.on_conflict_do_update(index_elements=[systems.c.mac], set_=_update_seen(pg.excluded))
    else:
        raise NotImplementedError(f"recording boots needs SQLite or PostgreSQL, not {conn.dialect.name}")
    rows: list[dict[str, Any]] = [
        {
            "mac": mac.hex,
            "profile": None,
            "state": SystemState.DISCOVERED.value,
            "hostname": None,
            "ip": None,
            "variables": {},
            "labels": {},
            "token": None,
            "arch": seen.arch,
            "uuid": seen.uuid,
            "first_seen": seen.first,
            "last_seen": seen.last,
            "local_boot": None,
            "token_ip": None,
            "token_expires": None,
            "updated": seen.last,
        }
        for mac, seen in staged.items()
    ]
    conn.execute(stmt, rows)


class SystemRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: dict[MacAddress, Seen] = {}
        self._lock = threading.Lock()

    def get(self, mac: MacAddress) -> System | None:
        """The system with this MAC, as stored: a MAC only staged as seen (not flushed yet) gives None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(systems).where(systems.c.mac == mac.hex)).mappings().first()
        return _to_system(row) if row else None

    def by_token(self, token: str) -> System | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(systems).where(systems.c.token == token)).mappings().first()
        return _to_system(row) if row else None

    def by_hostname(self, hostname: str) -> System | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(systems).where(systems.c.hostname == hostname)).mappings().first()
        return _to_system(row) if row else None

    def by_ip(self, ip: IPv4Address) -> System | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(systems).where(systems.c.ip == str(ip))).mappings().first()
        return _to_system(row) if row else None

    def list(self, *, state: SystemState | None = None, profile: str | None = None) -> list[System]:
        q = select(systems).order_by(systems.c.hostname, systems.c.mac)
        if state is not None:
            q = q.where(systems.c.state == state.value)
        if profile is not None:
            q = q.where(systems.c.profile == profile)
        with self._engine.connect() as conn:
            return [_to_system(r) for r in conn.execute(q).mappings().all()]

    def add(self, system: System) -> System:
        """Insert a new system; raises :class:`Conflict` if the MAC, hostname or IP is taken."""
        now = time.time()
        if system.first_seen is None:
            system = replace(system, first_seen=now)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(systems).values(**_to_row(system)))
        except IntegrityError as exc:
            raise _conflict(exc, system) from None
        return system

    def save(self, system: System) -> System:
        """Update an existing system (all fields); raises :class:`Conflict` or KeyError if absent."""
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    update(systems).where(systems.c.mac == system.mac.hex).values(**_to_row(system))
                )
        except IntegrityError as exc:
            raise _conflict(exc, system) from None
        if result.rowcount == 0:
            raise KeyError(str(system.mac))
        return system

    def remove(self, mac: MacAddress) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(systems).where(systems.c.mac == mac.hex)).rowcount)

    def seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> System:
        """Note now, in its own transaction, that ``mac`` booted (see :func:`write_seen`); return the system.

        For the HTTP side, which needs the record at once; the DHCP thread uses :meth:`stage_seen`.
        """
        with self._engine.begin() as conn:
            write_seen(conn, {mac: Seen(arch, uuid, now, now)})
        system = self.get(mac)
        if system is None:  # removed between the two statements: report it as it was seen
            system = System(
                mac, None, SystemState.DISCOVERED, arch=arch, uuid=uuid, first_seen=now, last_seen=now
            )
        return system

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        """Remember that ``mac`` booted, for the next :meth:`netboot.store.Store.flush`; writes nothing.

        Stages for one MAC coalesce (newest arch and UUID, first and last time). Until the flush, reads
        do not see it: :meth:`get` of a MAC never seen before returns None.
        """
        sighting = Seen(arch, uuid, now, now)
        with self._lock:
            before = self._seen.get(mac)
            self._seen[mac] = before.then(sighting) if before else sighting

    def take_seen(self) -> dict[MacAddress, Seen]:
        """Hand over everything staged (the caller writes it, or gives it back with :meth:`restore_seen`)."""
        with self._lock:
            staged, self._seen = self._seen, {}
        return staged

    def restore_seen(self, staged: Mapping[MacAddress, Seen]) -> None:
        """Put back sightings whose write failed, under any staged since (those are newer)."""
        with self._lock:
            for mac, older in staged.items():
                newer = self._seen.get(mac)
                self._seen[mac] = older.then(newer) if newer else older

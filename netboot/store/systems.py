"""System persistence: the registered (and discovered) machines.

Booting clients are noted as *seen* (last_seen, arch, UUID; an unknown MAC becomes a ``discovered``
system). The DHCP thread does not write that per packet: it calls :meth:`SystemRepo.stage_seen`, which only
remembers it. A batch with leases writes what was staged in the one transaction its group commit makes
anyway (:meth:`netboot.store.Store.flush_for_replies`); without one (OFFERs, ProxyDHCP) the sightings wait
for :meth:`netboot.store.Store.flush_due`, after the replies, about
:data:`~netboot.store.db.SEEN_LINGER` seconds at most, so no reply waits for them.

Discovered machines are bounded (:mod:`netboot.store.caps`): at most ``discovered_per_minute`` new ones are
stored a minute (the rest are served as unknown, not stored), and past ``discovered_max`` the discovered
machines seen longest ago are forgotten. Lists are pages counted in SQL (:meth:`SystemRepo.page`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.store.caps import DiscoveryGate, StoreLimits
from netboot.store.fastread import lookup_for
from netboot.store.schema import systems


class Conflict(ValueError):
    """A uniqueness rule would break (MAC, hostname, IP or token already used); names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


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
        boot_chain=r["boot_chain"],
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
        "boot_chain": s.boot_chain,
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


def upsert_seen(conn: Connection, staged: Mapping[MacAddress, Seen]) -> None:
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
            "boot_chain": None,
            "updated": seen.last,
        }
        for mac, seen in staged.items()
    ]
    conn.execute(stmt, rows)


#: sightings looked up per statement (well under SQLite's bound-parameter limit)
_LOOKUP_CHUNK = 500


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q: str) -> ColumnElement[bool] | None:
    """``q`` as SQL: a substring of the MAC (any spelling), host name, profile, IP or state; None = all."""
    needle = q.strip().lower()
    if not needle:
        return None
    pattern = f"%{_escape_like(needle)}%"
    fields: list[ColumnElement[bool]] = [
        func.lower(column).like(pattern, escape="\\")
        for column in (systems.c.mac, systems.c.hostname, systems.c.profile, systems.c.ip, systems.c.state)
    ]
    compact = needle.replace(":", "").replace("-", "").replace(".", "")
    if compact and compact != needle and all(c in "0123456789abcdef" for c in compact):
        fields.append(systems.c.mac.like(f"%{compact}%"))  # 52:54:00 against the stored 525400
    return or_(*fields)


@dataclass(frozen=True, slots=True)
class SystemPage:
    """One page of a list of systems and the number of systems the whole list has (counted in SQL)."""

    systems: list[System]
    total: int
    offset: int
    limit: int


#: The one-row lookups, built once. A ``select()`` built per call costs SQLAlchemy its construction and
#: coercion every time; a statement kept with a bound parameter is found in the compiled cache at once:
#: 147 -> 64 us for a registered MAC, 102 -> 35 us for an unknown one, and every DHCP DISCOVER and boot
#: script makes one such read (docs/performance.md).
_ONE_BY = {name: select(systems).where(systems.c[name] == bindparam("value"))
           for name in ("mac", "token", "hostname", "ip")}


#: the columns a raw read must decode itself (the engine's JSON type does it for the pooled read)
_JSON_COLUMNS = tuple(c.name for c in systems.columns if isinstance(c.type, JSON))


def _one_by(conn: Connection, column: str, value: str) -> System | None:
    row = conn.execute(_ONE_BY[column], {"value": value}).mappings().first()
    return _to_system(row) if row else None


class SystemRepo:
    def __init__(self, engine: Engine, limits: StoreLimits | None = None) -> None:
        self._engine = engine
        #: the hot read by MAC (every DISCOVER, every boot script) without the pool, where the database allows
        self._by_mac = lookup_for(engine, _ONE_BY["mac"], _JSON_COLUMNS)
        self._limits = limits or StoreLimits()
        self._gate = DiscoveryGate(self._limits.discovered_per_minute)
        self._seen: dict[MacAddress, Seen] = {}
        #: when the oldest sighting now staged was staged (``time.monotonic()``); None: nothing staged
        self._seen_since: float | None = None
        self._lock = threading.Lock()

    def get(self, mac: MacAddress) -> System | None:
        """The system with this MAC, as stored: a MAC only staged as seen (not flushed yet) gives None."""
        if self._by_mac is not None:
            row = self._by_mac.one(mac.hex)
            return _to_system(row) if row else None
        with self._engine.connect() as conn:
            return _one_by(conn, "mac", mac.hex)

    def close(self) -> None:
        """Close the connections of the hot read (the engine's are the engine's)."""
        if self._by_mac is not None:
            self._by_mac.close()

    def by_token(self, token: str) -> System | None:
        with self._engine.connect() as conn:
            return _one_by(conn, "token", token)

    def by_hostname(self, hostname: str) -> System | None:
        with self._engine.connect() as conn:
            return _one_by(conn, "hostname", hostname)

    def by_ip(self, ip: IPv4Address) -> System | None:
        with self._engine.connect() as conn:
            return _one_by(conn, "ip", str(ip))

    def list(self, *, state: SystemState | None = None, profile: str | None = None) -> list[System]:
        q = select(systems).order_by(systems.c.hostname, systems.c.mac)
        if state is not None:
            q = q.where(systems.c.state == state.value)
        if profile is not None:
            q = q.where(systems.c.profile == profile)
        with self._engine.connect() as conn:
            return [_to_system(r) for r in conn.execute(q).mappings().all()]

    def page(
        self,
        *,
        state: SystemState | None = None,
        profile: str | None = None,
        q: str = "",
        limit: int = 100,
        offset: int = 0,
    ) -> SystemPage:
        """One page of systems and how many match, in two statements whatever the table holds.

        ``state`` None lists the registered systems (every state but ``discovered``), by host name then
        MAC; ``discovered`` lists the unknown machines seen booting, the one seen last first (the order of
        the ``ix_systems_state_last_seen`` index). Limit/offset pagination: the lists are bounded (the
        discovered ones by ``limits.discovered_max``), and page numbers are what a person pages by.
        """
        where: list[ColumnElement[bool]] = [
            systems.c.state == state.value if state is not None
            else systems.c.state != SystemState.DISCOVERED.value
        ]
        if profile:
            where.append(systems.c.profile == profile)
        if (found := search_condition(q)) is not None:
            where.append(found)
        condition = and_(*where)
        rows: Select[Any] = select(systems).where(condition)
        if state is SystemState.DISCOVERED:
            rows = rows.order_by(systems.c.last_seen.desc(), systems.c.mac)
        else:
            rows = rows.order_by(systems.c.hostname, systems.c.mac)
        with self._engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(systems).where(condition)).scalar_one())
            found_rows = conn.execute(rows.limit(limit).offset(offset)).mappings().all()
        return SystemPage([_to_system(r) for r in found_rows], total, offset, limit)

    def count(self, state: SystemState) -> int:
        """How many systems are in ``state`` (counted in SQL, over the state index)."""
        q = select(func.count()).select_from(systems).where(systems.c.state == state.value)
        with self._engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

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
        """Note now, in its own transaction, that ``mac`` booted (see :meth:`write_seen`); return the system.

        For the HTTP side, which needs the record at once; the DHCP thread uses :meth:`stage_seen`.
        A new MAC past ``limits.discovered_per_minute`` is not stored: it is returned as the discovered
        system it would be, and the boot goes on as for any unknown machine.
        """
        with self._engine.begin() as conn:
            self.write_seen(conn, {mac: Seen(arch, uuid, now, now)})
            stored = _one_by(conn, "mac", mac.hex)
        if stored is None:  # not stored (over the cap), or removed meanwhile: report it as it was seen
            return System(
                mac, None, SystemState.DISCOVERED, arch=arch, uuid=uuid, first_seen=now, last_seen=now
            )
        return stored

    def write_seen(self, conn: Connection, staged: Mapping[MacAddress, Seen]) -> int:
        """Record sightings in ``conn``'s transaction, within the discovered-machine caps; how many were.

        Known systems are always updated. New MACs are stored only as far as the per-minute gate lets
        them (the earliest seen first; the rest are dropped, logged by the gate), and when any was
        stored, the discovered machines past ``discovered_max`` are forgotten, those seen longest ago
        first. One lookup of which MACs are known, one upsert, and the trim only when something was added.
        """
        if not staged:
            return 0
        hexes = [mac.hex for mac in staged]
        known: set[str] = set()
        for start in range(0, len(hexes), _LOOKUP_CHUNK):
            chunk = hexes[start : start + _LOOKUP_CHUNK]
            known.update(conn.execute(select(systems.c.mac).where(systems.c.mac.in_(chunk))).scalars())
        new = sorted((mac for mac in staged if mac.hex not in known), key=lambda mac: staged[mac].first)
        admitted = self._gate.admit(len(new), max(seen.last for seen in staged.values())) if new else 0
        keep = {mac: seen for mac, seen in staged.items() if mac.hex in known}
        keep.update((mac, staged[mac]) for mac in new[:admitted])
        upsert_seen(conn, keep)
        if admitted:
            self._forget_oldest_discovered(conn)
        return len(keep)

    def _forget_oldest_discovered(self, conn: Connection) -> None:
        """Delete the discovered machines past the newest ``discovered_max`` (one statement, over the
        ``ix_systems_state_last_seen`` index); a registered system is never touched."""
        discovered = systems.c.state == SystemState.DISCOVERED.value
        beyond = (
            select(systems.c.mac)
            .where(discovered)
            .order_by(systems.c.last_seen.desc())
            .offset(self._limits.discovered_max)
        )
        conn.execute(delete(systems).where(discovered, systems.c.mac.in_(beyond)))

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        """Remember that ``mac`` booted, for the next :meth:`netboot.store.Store.flush`; writes nothing.

        Stages for one MAC coalesce (newest arch and UUID, first and last time). Until the flush, reads
        do not see it: :meth:`get` of a MAC never seen before returns None.
        """
        sighting = Seen(arch, uuid, now, now)
        with self._lock:
            before = self._seen.get(mac)
            self._seen[mac] = before.then(sighting) if before else sighting
            if self._seen_since is None:
                self._seen_since = time.monotonic()

    def seen_staged_since(self) -> float | None:
        """When (``time.monotonic()``) the oldest sighting not yet written was staged; None: none is."""
        return self._seen_since

    def take_seen(self) -> dict[MacAddress, Seen]:
        """Hand over everything staged (the caller writes it, or gives it back with :meth:`restore_seen`)."""
        with self._lock:
            staged, self._seen = self._seen, {}
            self._seen_since = None
        return staged

    def restore_seen(self, staged: Mapping[MacAddress, Seen]) -> None:
        """Put back sightings whose write failed, under any staged since (those are newer)."""
        with self._lock:
            for mac, older in staged.items():
                newer = self._seen.get(mac)
                self._seen[mac] = older.then(newer) if newer else older
            if staged and self._seen_since is None:
                self._seen_since = time.monotonic()

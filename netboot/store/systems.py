"""System persistence: the registered (and discovered) machines."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
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
        "updated": time.time(),
    }


def _conflict(exc: IntegrityError, s: System) -> Conflict:
    text = str(exc.orig).lower()
    for field, value in (("hostname", s.hostname), ("ip", s.ip), ("token", s.token)):
        if f"systems.{field}" in text or f"({field})" in text:
            return Conflict(field, f"{field} {value} is already used by another system")
    return Conflict("mac", f"system {s.mac} already exists")


class SystemRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, mac: MacAddress) -> System | None:
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
        """Note that ``mac`` booted: update last_seen/arch, or record it as discovered if unknown."""
        existing = self.get(mac)
        if existing is None:
            system = System(
                mac=mac,
                profile=None,
                state=SystemState.DISCOVERED,
                arch=arch,
                uuid=uuid,
                first_seen=now,
                last_seen=now,
            )
            try:
                return self.add(system)
            except Conflict:
                existing = self.get(mac)
                if existing is None:
                    raise
        updated = replace(existing, last_seen=now, arch=arch or existing.arch, uuid=uuid or existing.uuid)
        with self._engine.begin() as conn:
            conn.execute(
                update(systems)
                .where(systems.c.mac == mac.hex)
                .values(last_seen=now, arch=updated.arch, uuid=updated.uuid)
            )
        return updated

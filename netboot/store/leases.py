"""Lease persistence. The pool in :mod:`netboot.dhcp.leases` decides; this only stores.

Writes are staged with :meth:`LeaseRepo.stage` and made durable together by a flush the DHCP transport
calls before it sends the ACKs of a batch: :meth:`netboot.store.Store.flush` (leases and the batch's "seen"
updates in one transaction) or :meth:`LeaseRepo.flush` (leases only).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from netboot.mac import MacAddress
from netboot.store.schema import leases


@dataclass(frozen=True, slots=True)
class Lease:
    ip: IPv4Address
    mac: MacAddress
    client_id: bytes | None
    hostname: str | None
    starts: float
    expires: float
    state: str = "active"

    def active(self, now: float) -> bool:
        return self.state == "active" and self.expires > now


def _row(lease: Lease) -> dict[str, object]:
    return {
        "ip": str(lease.ip),
        "mac": lease.mac.hex,
        "client_id": lease.client_id.hex() if lease.client_id is not None else None,
        "hostname": lease.hostname,
        "starts": lease.starts,
        "expires": lease.expires,
        "state": lease.state,
    }


def _from_row(r: Any) -> Lease:
    return Lease(
        ip=IPv4Address(r["ip"]),
        mac=MacAddress(r["mac"]),
        client_id=bytes.fromhex(r["client_id"]) if r["client_id"] else None,
        hostname=r["hostname"],
        starts=r["starts"],
        expires=r["expires"],
        state=r["state"],
    )


class LeaseRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: dict[IPv4Address, Lease | None] = {}
        self._lock = threading.Lock()

    def all(self) -> list[Lease]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(leases)).mappings().all()
        return [_from_row(r) for r in rows]

    def by_ip(self, ip: IPv4Address) -> Lease | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.ip == str(ip))).mappings().first()
        return _from_row(row) if row else None

    def active_for(self, mac: MacAddress, now: float) -> Lease | None:
        """The MAC's unexpired active lease, if any (the newest)."""
        q = (select(leases).where(leases.c.mac == mac.hex, leases.c.state == "active", leases.c.expires > now)
             .order_by(leases.c.expires.desc()))
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _from_row(row) if row else None

    def stage(self, ip: IPv4Address, lease: Lease | None) -> None:
        """Queue a write (``None`` deletes the address's lease) for the next :meth:`flush`."""
        with self._lock:
            self._pending[ip] = lease

    def pending(self) -> bool:
        """Whether a lease write is staged (an ACK waits for it to be durable)."""
        return bool(self._pending)

    def take(self) -> dict[IPv4Address, Lease | None]:
        """Hand over every staged write (the caller writes it, or gives it back with :meth:`restore`)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def restore(self, pending: dict[IPv4Address, Lease | None]) -> None:
        """Put back writes that failed, for the next try; stages made since are newer and win."""
        with self._lock:
            self._pending = {**pending, **self._pending}

    @staticmethod
    def write(conn: Connection, pending: dict[IPv4Address, Lease | None]) -> None:
        """Apply taken writes inside the caller's transaction."""
        if not pending:
            return
        conn.execute(delete(leases).where(leases.c.ip.in_([str(ip) for ip in pending])))
        rows = [_row(lease) for lease in pending.values() if lease is not None]
        if rows:
            conn.execute(insert(leases), rows)

    def flush(self) -> int:
        """Write every staged lease in one transaction; durable when this returns. Returns the count."""
        pending = self.take()
        if not pending:
            return 0
        try:
            with self._engine.begin() as conn:
                self.write(conn, pending)
        except Exception:
            self.restore(pending)
            raise
        return len(pending)

    def replace_all(self, items: Iterable[Lease]) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(leases))
            rows = [_row(lease) for lease in items]
            if rows:
                conn.execute(insert(leases), rows)

"""The lease pool for full DHCP mode: which address each client gets, and never one address twice.

The pool keeps the lease table in memory (it is the single writer) and stages every change in
:class:`~netboot.store.leases.LeaseRepo`; the transport flushes staged changes before sending the ACKs
that announce them. Offers are held in memory only, for :attr:`OFFER_HOLD` seconds, so two clients that
DISCOVER at once are offered different addresses.

A client is identified by its client identifier (option 61, RFC 2132/6842) when it sends one, else by
its hardware address, as RFC 2131 section 4.2 says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from netboot.mac import MacAddress
from netboot.store.leases import Lease, LeaseRepo

#: seconds an offered address stays set aside for the client that was offered it
OFFER_HOLD = 30.0


@dataclass(frozen=True, slots=True)
class ClientKey:
    """Who a lease belongs to: client identifier if sent, else MAC."""

    mac: MacAddress
    client_id: bytes | None

    @property
    def ident(self) -> bytes:
        return identity(self.mac, self.client_id)

    def owns(self, lease: Lease) -> bool:
        return self.ident == identity(lease.mac, lease.client_id)


def identity(mac: MacAddress, client_id: bytes | None) -> bytes:
    """The key a lease is filed under: ``b"C" + client id`` or ``b"M" + MAC``.

    A client identifier that is just "Ethernet + this MAC" (type 1, RFC 2132 9.14) names the same client
    as the bare MAC: OVMF's PXE sends no option 61 and the iPXE it loads sends ``01:<mac>``; treating them
    as one keeps the machine on one address through the whole boot chain.
    """
    if client_id is None or client_id == b"\x01" + mac.packed:
        return b"M" + mac.packed
    return b"C" + client_id


class LeasePool:
    """Address allocation over ``first..last`` with static reservations; single-threaded by design."""

    def __init__(
        self,
        first: IPv4Address,
        last: IPv4Address,
        *,
        lease_time: int,
        repo: LeaseRepo,
        reservations: dict[MacAddress, IPv4Address] | None = None,
        excluded: Iterable[IPv4Address] = (),
    ) -> None:
        self.first, self.last, self.lease_time = first, last, lease_time
        self._repo = repo
        self._reservations = dict(reservations or {})
        self._reserved_ips = {ip: mac for mac, ip in self._reservations.items()}
        self._excluded = set(excluded)
        self._by_ip: dict[IPv4Address, Lease] = {}
        self._by_ident: dict[bytes, IPv4Address] = {}
        self._offers: dict[IPv4Address, tuple[ClientKey, float]] = {}
        self._cursor = int(first)
        self._offered: dict[bytes, IPv4Address] = {}  # client identity -> address held for its offer
        self._prune_at = 4096
        for lease in sorted(repo.all(), key=lambda lease: lease.expires):
            self._by_ip[lease.ip] = lease
            if lease.state == "active":  # as _set() does: a quarantined row is nobody's lease
                self._by_ident[identity(lease.mac, lease.client_id)] = lease.ip

    # ------------------------------------------------------------------------------------------ queries

    def in_pool(self, ip: IPv4Address) -> bool:
        return int(self.first) <= int(ip) <= int(self.last) and ip not in self._excluded

    def leases(self) -> list[Lease]:
        return sorted(self._by_ip.values(), key=lambda lease: int(lease.ip))

    def lease_of(self, key: ClientKey, now: float) -> Lease | None:
        """The client's current (unexpired) lease, if any."""
        ip = self._by_ident.get(key.ident)
        lease = self._by_ip.get(ip) if ip is not None else None
        if lease is not None and lease.state == "active" and key.owns(lease) and lease.expires > now:
            return lease
        return None

    def _owned_by_other(self, ip: IPv4Address, key: ClientKey, now: float) -> bool:
        lease = self._by_ip.get(ip)
        if lease is not None and lease.expires > now and (lease.state != "active" or not key.owns(lease)):
            return True
        offer = self._offers.get(ip)
        if offer is not None and offer[1] > now and offer[0].ident != key.ident:
            return True
        owner = self._reserved_ips.get(ip)
        return owner is not None and owner != key.mac

    def allocatable(self, ip: IPv4Address, key: ClientKey, now: float) -> bool:
        """May ``ip`` be given to ``key`` now? (Its reservation, or a free pool address.)"""
        reserved = self._reservations.get(key.mac)
        if reserved is not None:
            return ip == reserved and not self._owned_by_other(ip, key, now)
        return self.in_pool(ip) and not self._owned_by_other(ip, key, now)

    # ------------------------------------------------------------------------------------------ choices

    def choose(self, key: ClientKey, requested: IPv4Address | None, now: float) -> IPv4Address | None:
        """The address to OFFER: reservation, current or last lease, requested, then the next free one."""
        reserved = self._reservations.get(key.mac)
        if reserved is not None:
            return reserved if not self._owned_by_other(reserved, key, now) else None
        current = self._previous_of(key)
        if current is not None and self.allocatable(current, key, now):
            return current
        if requested is not None and self.allocatable(requested, key, now):
            return requested
        held = self._offered.get(key.ident)
        if held is not None and self.allocatable(held, key, now):
            return held  # a retransmitted DISCOVER: the same offer, not one more address set aside
        return self._next_free(key, now)

    def _previous_of(self, key: ClientKey) -> IPv4Address | None:
        ip = self._by_ident.get(key.ident)
        lease = self._by_ip.get(ip) if ip is not None else None
        return ip if lease is not None and lease.state == "active" and key.owns(lease) else None

    def _next_free(self, key: ClientKey, now: float) -> IPv4Address | None:
        """Never-leased addresses first (round robin), then the longest-expired one."""
        first, last = int(self.first), int(self.last)
        size = last - first + 1
        for step in range(size):
            n = first + (self._cursor - first + step) % size
            ip = IPv4Address(n)
            if ip in self._by_ip or ip in self._excluded or ip in self._reserved_ips:
                continue
            offer = self._offers.get(ip)
            if offer is not None and offer[1] > now and offer[0].ident != key.ident:
                continue
            self._cursor = n + 1 if n < last else first
            return ip
        expired = [
            lease
            for lease in self._by_ip.values()
            if lease.expires <= now
            and self.in_pool(lease.ip)
            and lease.ip not in self._reserved_ips
            and not self._owned_by_other(lease.ip, key, now)
        ]
        return min(expired, key=lambda lease: lease.expires).ip if expired else None

    # ---------------------------------------------------------------------------------------- mutations

    def hold_offer(self, ip: IPv4Address, key: ClientKey, now: float) -> None:
        previous = self._offered.get(key.ident)
        if previous is not None and previous != ip:
            held = self._offers.get(previous)
            if held is not None and held[0].ident == key.ident:
                del self._offers[previous]  # one held offer per client
        self._offers[ip] = (key, now + OFFER_HOLD)
        self._offered[key.ident] = ip
        if len(self._offers) > self._prune_at or len(self._offered) > self._prune_at:
            self._offers = {k: v for k, v in self._offers.items() if v[1] > now}
            self._offered = {v[0].ident: k for k, v in self._offers.items()}
            self._prune_at = max(4096, 2 * len(self._offers))  # amortised: not a scan per DISCOVER

    def commit(self, ip: IPv4Address, key: ClientKey, hostname: str | None, now: float) -> Lease:
        """Bind ``ip`` to ``key`` (the ACK); staged for the next flush. Caller checked allocatable()."""
        previous = self._by_ip.get(ip)
        starts = previous.starts if previous is not None and key.owns(previous) else now
        lease = Lease(
            ip=ip,
            mac=key.mac,
            client_id=key.client_id,
            hostname=hostname,
            starts=starts,
            expires=now + self.lease_time,
        )
        old_ip = self._by_ident.get(key.ident)
        if old_ip is not None and old_ip != ip:
            old = self._by_ip.get(old_ip)
            if old is not None and key.owns(old) and old.state == "active":
                self._set(old_ip, None)  # one address per client
        self._offers.pop(ip, None)
        held = self._offered.pop(key.ident, None)
        offer = self._offers.get(held) if held is not None and held != ip else None
        if held is not None and offer is not None and offer[0].ident == key.ident:
            del self._offers[held]  # it took another address: that offer is free again
        self._set(ip, lease)
        return lease

    def release(self, ip: IPv4Address, key: ClientKey, now: float) -> bool:
        lease = self._by_ip.get(ip)
        if lease is None or lease.state != "active" or not key.owns(lease):
            return False
        # keep the row, expired, so the client gets the same address next time (affinity)
        self._set(
            ip,
            Lease(
                ip=ip,
                mac=lease.mac,
                client_id=lease.client_id,
                hostname=lease.hostname,
                starts=lease.starts,
                expires=now,
            ),
        )
        return True

    def decline(self, ip: IPv4Address, key: ClientKey, now: float) -> bool:
        """The client found ``ip`` in use: quarantine it for one lease time (RFC 2131 4.3.3)."""
        if not self.in_pool(ip) and ip not in self._reserved_ips:
            return False
        lease = self._by_ip.get(ip)
        if lease is not None and not key.owns(lease):
            return False
        self._set(
            ip,
            Lease(
                ip=ip,
                mac=key.mac,
                client_id=key.client_id,
                hostname=None,
                starts=now,
                expires=now + self.lease_time,
                state="declined",
            ),
        )
        return True

    def _set(self, ip: IPv4Address, lease: Lease | None) -> None:
        old = self._by_ip.pop(ip, None)
        if old is not None:
            ident = identity(old.mac, old.client_id)
            if self._by_ident.get(ident) == ip:
                del self._by_ident[ident]
        if lease is not None:
            self._by_ip[ip] = lease
            if lease.state == "active":
                self._by_ident[identity(lease.mac, lease.client_id)] = ip
        self._repo.stage(ip, lease)

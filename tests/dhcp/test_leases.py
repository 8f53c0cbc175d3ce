"""LeasePool over a real store (SQLite in tmp_path): one address per client, never one address twice."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from netboot.dhcp.leases import OFFER_HOLD, ClientKey, LeasePool, identity
from netboot.mac import MacAddress
from netboot.store import Store, open_store
from netboot.store.leases import Lease, LeaseRepo

FIRST, LAST = IPv4Address("10.0.0.100"), IPv4Address("10.0.0.109")  # ten addresses
LEASE_TIME = 600
T0 = 1_700_000_000.0


def ip(n: int) -> IPv4Address:
    return IPv4Address(int(FIRST) + n)


def mac(n: int) -> MacAddress:
    return MacAddress.from_bytes(bytes.fromhex("525400000000")[:5] + bytes([n]))


def key(n: int, client_id: bytes | None = None) -> ClientKey:
    return ClientKey(mac(n), client_id)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'leases.db'}")
    yield store
    store.close()


def make_pool(
    store: Store, first: IPv4Address = FIRST, last: IPv4Address = LAST, **kwargs: object
) -> LeasePool:
    return LeasePool(first, last, lease_time=LEASE_TIME, repo=store.leases, **kwargs)  # type: ignore[arg-type]


def dora(pool: LeasePool, client: ClientKey, now: float, requested: IPv4Address | None = None) -> Lease:
    """What the service does for DISCOVER then REQUEST(selecting)."""
    offered = pool.choose(client, requested, now)
    assert offered is not None
    pool.hold_offer(offered, client, now)
    assert pool.allocatable(offered, client, now)
    return pool.commit(offered, client, None, now)


# ----------------------------------------------------------------------------------------- basics


def test_first_client_gets_the_first_address(store: Store) -> None:
    pool = make_pool(store)
    lease = dora(pool, key(1), T0)
    assert lease.ip == FIRST
    assert (lease.mac, lease.client_id, lease.starts, lease.expires) == (mac(1), None, T0, T0 + LEASE_TIME)
    assert lease.active(T0) and not lease.active(T0 + LEASE_TIME)
    assert pool.lease_of(key(1), T0) == lease
    assert pool.leases() == [lease]


def test_distinct_clients_get_distinct_addresses(store: Store) -> None:
    pool = make_pool(store)
    ips = [dora(pool, key(n), T0).ip for n in range(10)]
    assert sorted(ips) == [ip(n) for n in range(10)]


def test_concurrent_discovers_held_as_offers_get_different_addresses(store: Store) -> None:
    """Ten clients DISCOVER before any REQUESTs: each offer is set aside for its client."""
    pool = make_pool(store)
    offers = {}
    for n in range(10):
        offered = pool.choose(key(n), None, T0)
        assert offered is not None
        pool.hold_offer(offered, key(n), T0)
        offers[n] = offered
    assert len(set(offers.values())) == 10
    assert pool.choose(key(99), None, T0) is None  # every address is held
    for n, offered in offers.items():
        assert not pool.allocatable(offered, key((n + 1) % 10), T0)
        assert pool.allocatable(offered, key(n), T0)
    for n, offered in reversed(offers.items()):
        assert pool.commit(offered, key(n), None, T0 + 1).ip == offered


def test_requested_address_of_anothers_offer_is_not_given(store: Store) -> None:
    pool = make_pool(store)
    pool.hold_offer(ip(3), key(1), T0)
    assert pool.choose(key(2), ip(3), T0) != ip(3)
    assert not pool.allocatable(ip(3), key(2), T0)


def test_offer_hold_expires(store: Store) -> None:
    pool = make_pool(store, FIRST, FIRST)
    pool.hold_offer(FIRST, key(1), T0)
    assert pool.choose(key(2), None, T0 + OFFER_HOLD - 1) is None
    assert pool.choose(key(2), None, T0 + OFFER_HOLD + 1) == FIRST


def test_retransmitted_discover_gets_the_same_offer(store: Store) -> None:
    """A client repeating DISCOVER (firmware retries every few seconds) holds one offer, not one per retry."""
    pool = make_pool(store)
    first = pool.choose(key(1), None, T0)
    assert first is not None
    pool.hold_offer(first, key(1), T0)
    for retry in range(1, 20):
        again = pool.choose(key(1), None, T0 + retry)
        assert again == first
        pool.hold_offer(again, key(1), T0 + retry)
    # and the other nine addresses are still free for nine other clients
    assert len({dora(pool, key(n), T0 + 30).ip for n in range(2, 11)}) == 9


def test_new_offer_to_the_same_client_frees_the_old_one(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(1))
    pool.hold_offer(ip(0), key(1), T0)
    pool.hold_offer(ip(1), key(1), T0 + 1)  # e.g. it then asked for another address by option 50
    assert pool.choose(key(2), None, T0 + 2) == ip(0)


def test_exhaustion_returns_none(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(2))
    for n in range(3):
        dora(pool, key(n), T0)
    assert pool.choose(key(3), None, T0) is None
    assert pool.choose(key(3), ip(1), T0) is None
    assert not pool.allocatable(ip(1), key(3), T0)
    # the leaseholders still get their own address back
    assert pool.choose(key(1), None, T0) == pool.lease_of(key(1), T0).ip  # type: ignore[union-attr]


def test_renewal_keeps_the_address_and_start(store: Store) -> None:
    pool = make_pool(store)
    first = dora(pool, key(1), T0)
    assert pool.choose(key(1), None, T0 + 100) == first.ip
    again = pool.commit(first.ip, key(1), "host1", T0 + 300)
    assert (again.ip, again.starts, again.expires, again.hostname) == (
        first.ip,
        T0,
        T0 + 300 + LEASE_TIME,
        "host1",
    )
    assert len(pool.leases()) == 1


def test_one_address_per_client(store: Store) -> None:
    pool = make_pool(store)
    dora(pool, key(1), T0)
    assert pool.allocatable(ip(5), key(1), T0)
    moved = pool.commit(ip(5), key(1), None, T0 + 1)
    assert pool.leases() == [moved]
    assert pool.lease_of(key(1), T0 + 1) == moved


# ---------------------------------------------------------------------------------- requested address


def test_requested_address_is_honoured_when_free(store: Store) -> None:
    pool = make_pool(store)
    assert pool.choose(key(1), ip(7), T0) == ip(7)


@pytest.mark.parametrize("requested", ["10.0.0.99", "10.0.0.110", "192.168.1.5", "0.0.0.0"])
def test_requested_address_outside_the_range_is_not_given(store: Store, requested: str) -> None:
    pool = make_pool(store)
    assert pool.choose(key(1), IPv4Address(requested), T0) == FIRST
    assert not pool.allocatable(IPv4Address(requested), key(1), T0)


def test_requested_address_in_use_is_not_given(store: Store) -> None:
    pool = make_pool(store)
    taken = dora(pool, key(1), T0, requested=ip(4)).ip
    assert taken == ip(4)
    assert pool.choose(key(2), ip(4), T0 + 1) != ip(4)


def test_current_lease_wins_over_requested(store: Store) -> None:
    """RFC 2131 4.3.1: the client's current binding first."""
    pool = make_pool(store)
    current = dora(pool, key(1), T0).ip
    assert pool.choose(key(1), ip(8), T0 + 1) == current


def test_excluded_addresses_are_never_given(store: Store) -> None:
    excluded = [ip(0), ip(2)]
    pool = make_pool(store, excluded=excluded)
    got = {dora(pool, key(n), T0).ip for n in range(8)}
    assert got.isdisjoint(excluded)
    assert pool.choose(key(50), None, T0) is None
    assert not pool.in_pool(ip(0))
    assert not pool.allocatable(ip(2), key(50), T0)


# ---------------------------------------------------------------------------------------- reservations


def test_reservation_is_honoured(store: Store) -> None:
    pool = make_pool(store, reservations={mac(1): ip(5)})
    assert pool.choose(key(1), None, T0) == ip(5)
    assert pool.choose(key(1), ip(2), T0) == ip(5)  # not what it asks for
    assert not pool.allocatable(ip(2), key(1), T0)  # and only its own
    assert dora(pool, key(1), T0).ip == ip(5)


def test_reservation_outside_the_range(store: Store) -> None:
    outside = IPv4Address("10.0.0.50")
    pool = make_pool(store, reservations={mac(1): outside})
    assert dora(pool, key(1), T0).ip == outside


def test_reservation_matches_the_mac_whatever_the_client_id(store: Store) -> None:
    pool = make_pool(store, reservations={mac(1): ip(5)})
    assert dora(pool, key(1, b"\x01" + mac(1).packed), T0).ip == ip(5)


def test_reserved_address_is_never_given_to_others(store: Store) -> None:
    pool = make_pool(store, reservations={mac(1): ip(5)})
    given = {dora(pool, key(n), T0).ip for n in range(2, 11)}
    assert ip(5) not in given
    assert pool.choose(key(20), None, T0) is None
    assert pool.choose(key(20), ip(5), T0) is None
    assert not pool.allocatable(ip(5), key(20), T0)
    assert dora(pool, key(1), T0).ip == ip(5)


def test_reserved_address_is_not_given_to_others_even_when_it_expires(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(1), reservations={mac(1): ip(1)})
    dora(pool, key(1), T0)
    later = T0 + 10 * LEASE_TIME
    assert pool.choose(key(2), None, later) == ip(0)
    dora(pool, key(2), later)
    assert pool.choose(key(3), None, later) is None


def test_reservation_held_by_an_old_lease_is_not_stolen(store: Store) -> None:
    """An address leased before it was reserved stays with its holder until the lease ends."""
    pool = make_pool(store)
    dora(pool, key(2), T0, requested=ip(5))
    store.leases.flush()
    pool = make_pool(store, reservations={mac(1): ip(5)})
    assert pool.choose(key(1), None, T0 + 1) is None
    assert pool.choose(key(1), None, T0 + LEASE_TIME + 1) == ip(5)


# ------------------------------------------------------------------------------------------ identity


def test_client_id_is_the_identity_when_sent(store: Store) -> None:
    """RFC 2131 4.2 / RFC 6842: option 61 identifies the client, not chaddr."""
    pool = make_pool(store)
    laptop = ClientKey(mac(1), b"\xffdock-client")
    lease = dora(pool, laptop, T0)
    # same client id from another NIC: the same client, the same lease
    other_nic = ClientKey(mac(2), b"\xffdock-client")
    assert pool.lease_of(other_nic, T0) == lease
    assert pool.choose(other_nic, None, T0) == lease.ip
    # same MAC without the client id: a different client
    assert pool.lease_of(key(1), T0) is None
    assert pool.choose(key(1), None, T0) != lease.ip
    # same MAC, different client id: different again
    assert pool.lease_of(ClientKey(mac(1), b"\x01other"), T0) is None


def test_offer_belongs_to_the_client_id(store: Store) -> None:
    pool = make_pool(store)
    pool.hold_offer(ip(3), ClientKey(mac(1), b"\xffid"), T0)
    assert pool.allocatable(ip(3), ClientKey(mac(2), b"\xffid"), T0)
    assert not pool.allocatable(ip(3), ClientKey(mac(1), None), T0)


def test_identity_keys() -> None:
    assert identity(mac(1), None) == b"M" + mac(1).packed
    assert identity(mac(1), b"\xffduid") == b"C\xffduid"
    assert identity(mac(1), b"") != identity(mac(1), None)
    # "Ethernet + this MAC" (type 1) is the MAC: OVMF sends no option 61, the iPXE it loads sends 01:<mac>
    assert identity(mac(1), b"\x01" + mac(1).packed) == identity(mac(1), None)
    assert identity(mac(1), b"\x01" + mac(2).packed) != identity(mac(1), None)


def test_firmware_and_its_ipxe_are_one_client(store: Store) -> None:
    pool = make_pool(store)
    firmware, ipxe = key(1), ClientKey(mac(1), b"\x01" + mac(1).packed)
    offered = pool.choose(firmware, None, T0)
    assert offered is not None
    pool.hold_offer(offered, firmware, T0)
    assert pool.choose(ipxe, None, T0 + 1) == offered  # the held offer is its own
    assert pool.allocatable(offered, ipxe, T0 + 1)
    lease = pool.commit(offered, firmware, None, T0 + 1)
    assert pool.lease_of(ipxe, T0 + 2) == lease
    assert pool.choose(ipxe, None, T0 + 2) == lease.ip
    assert key(1).owns(Lease(ip(0), mac(1), None, None, T0, T0))
    assert not key(1).owns(Lease(ip(0), mac(1), b"x", None, T0, T0))


# ----------------------------------------------------------------------------------- release, decline


def test_release_ends_the_lease_and_keeps_affinity(store: Store) -> None:
    pool = make_pool(store)
    first = dora(pool, key(1), T0)
    dora(pool, key(2), T0)
    assert pool.release(first.ip, key(1), T0 + 10)
    assert pool.lease_of(key(1), T0 + 10) is None
    # a never-used address goes to a newcomer first, so the old holder gets its address back
    assert dora(pool, key(3), T0 + 11).ip not in (first.ip, ip(1))
    assert pool.choose(key(1), None, T0 + 12) == first.ip


def test_release_survives_a_restart_with_affinity(store: Store) -> None:
    pool = make_pool(store)
    first = dora(pool, key(1), T0)
    pool.release(first.ip, key(1), T0 + 10)
    store.leases.flush()
    assert make_pool(store).choose(key(1), None, T0 + 20) == first.ip


def test_released_address_is_reused_when_the_pool_is_full(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(1))
    a, _ = dora(pool, key(1), T0), dora(pool, key(2), T0)
    pool.release(a.ip, key(1), T0 + 1)
    assert dora(pool, key(3), T0 + 2).ip == a.ip


def test_release_by_another_client_is_ignored(store: Store) -> None:
    pool = make_pool(store)
    lease = dora(pool, key(1), T0)
    assert not pool.release(lease.ip, key(2), T0 + 1)
    assert not pool.release(ip(9), key(1), T0 + 1)  # not its address
    assert pool.lease_of(key(1), T0 + 1) == lease


def test_decline_quarantines_the_address(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(1))
    bad = dora(pool, key(1), T0).ip
    assert pool.decline(bad, key(1), T0 + 1)
    assert pool.lease_of(key(1), T0 + 1) is None
    # nobody gets it during the quarantine, not even the client that declined it
    assert pool.choose(key(1), None, T0 + 2) == ip(1)
    assert pool.choose(key(2), bad, T0 + 2) == ip(1)
    assert not pool.allocatable(bad, key(1), T0 + 2)
    assert not pool.allocatable(bad, key(2), T0 + 2)
    dora(pool, key(1), T0 + 2)
    assert pool.choose(key(2), None, T0 + 3) is None
    # after one lease time it may be used again
    assert pool.choose(key(2), None, T0 + 1 + LEASE_TIME) == bad


def test_decline_quarantine_survives_restart(store: Store) -> None:
    pool = make_pool(store, FIRST, FIRST)
    pool.decline(FIRST, key(1), T0)
    store.leases.flush()
    pool = make_pool(store, FIRST, FIRST)
    assert pool.choose(key(2), None, T0 + 1) is None
    assert [lease.state for lease in pool.leases()] == ["declined"]


def test_decline_of_someone_elses_lease_is_ignored(store: Store) -> None:
    pool = make_pool(store)
    lease = dora(pool, key(1), T0)
    assert not pool.decline(lease.ip, key(2), T0 + 1)
    assert pool.lease_of(key(1), T0 + 1) == lease


def test_decline_outside_the_pool_is_ignored(store: Store) -> None:
    pool = make_pool(store)
    assert not pool.decline(IPv4Address("192.168.0.1"), key(1), T0)
    assert pool.leases() == []


def test_release_of_a_declined_address_does_not_lift_the_quarantine(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(1))
    bad = dora(pool, key(1), T0).ip
    pool.decline(bad, key(1), T0 + 1)
    good = dora(pool, key(1), T0 + 2)
    assert not pool.release(bad, key(1), T0 + 3)
    assert pool.lease_of(key(1), T0 + 3) == good
    assert pool.choose(key(2), None, T0 + 4) is None


# --------------------------------------------------------------------------------------------- expiry


def test_expired_lease_is_reused_longest_expired_first(store: Store) -> None:
    pool = make_pool(store, FIRST, ip(2))
    dora(pool, key(1), T0)
    dora(pool, key(2), T0 + 100)
    dora(pool, key(3), T0 + 200)
    assert pool.choose(key(4), None, T0 + LEASE_TIME - 1) is None
    later = T0 + LEASE_TIME + 150  # key(1) and key(2) have expired, key(1) longest ago
    assert pool.lease_of(key(1), later) is None
    assert pool.choose(key(4), None, later) == ip(0)
    dora(pool, key(4), later)
    assert pool.choose(key(5), None, later) == ip(1)


def test_expired_client_gets_its_old_address_back(store: Store) -> None:
    pool = make_pool(store)
    first = dora(pool, key(1), T0)
    assert pool.choose(key(1), None, T0 + 5 * LEASE_TIME) == first.ip


def test_expired_client_loses_the_address_once_reused(store: Store) -> None:
    pool = make_pool(store, FIRST, FIRST)
    dora(pool, key(1), T0)
    later = T0 + LEASE_TIME + 1
    dora(pool, key(2), later)
    assert pool.choose(key(1), None, later) is None
    assert not pool.allocatable(FIRST, key(1), later)
    assert pool.lease_of(key(2), later) is not None


# ---------------------------------------------------------------------------------------- persistence


def test_persistence_round_trip(store: Store, tmp_path: Path) -> None:
    pool = make_pool(store, reservations={mac(9): ip(9)})
    dora(pool, key(1), T0)
    dora(pool, ClientKey(mac(2), b"\x01\x02\x03"), T0 + 1)
    pool.commit(ip(7), key(3), "web3", T0 + 2)
    dora(pool, key(9), T0 + 3)
    pool.decline(ip(8), key(4), T0 + 4)
    before = pool.leases()
    assert store.leases.flush() == 5
    assert store.leases.flush() == 0  # nothing left staged

    # a new process: new store object over the same file
    again = open_store(f"sqlite:///{tmp_path / 'leases.db'}")
    try:
        fresh = make_pool(again, reservations={mac(9): ip(9)})
        assert fresh.leases() == before
        assert fresh.lease_of(key(1), T0 + 5) == before[0]
        assert fresh.lease_of(ClientKey(mac(2), b"\x01\x02\x03"), T0 + 5) is not None
        assert fresh.lease_of(key(3), T0 + 5).hostname == "web3"  # type: ignore[union-attr]
        # and it goes on handing out only free addresses
        taken = {lease.ip for lease in before}
        assert {dora(fresh, key(n), T0 + 6).ip for n in range(20, 25)}.isdisjoint(taken)
        assert fresh.choose(key(30), None, T0 + 6) is None
    finally:
        again.close()


def test_unflushed_changes_are_not_persisted(store: Store) -> None:
    pool = make_pool(store)
    dora(pool, key(1), T0)
    assert make_pool(store).leases() == []
    store.leases.flush()
    assert len(make_pool(store).leases()) == 1


def test_moves_and_releases_are_persisted(store: Store) -> None:
    pool = make_pool(store)
    dora(pool, key(1), T0)
    pool.commit(ip(5), key(1), None, T0 + 1)  # moved: the old row goes
    dora(pool, key(2), T0 + 2)
    pool.release(ip(1), key(2), T0 + 3)
    store.leases.flush()
    rows = {lease.ip: lease for lease in store.leases.all()}
    assert set(rows) == {ip(5), ip(1)}
    assert rows[ip(1)].expires == T0 + 3 and rows[ip(1)].mac == mac(2)


def test_restart_with_a_declined_and_an_active_lease_of_one_client(store: Store) -> None:
    """After a restart the client's active lease is found, not its quarantined one."""
    pool = make_pool(store)
    good = dora(pool, key(1), T0)
    assert pool.decline(ip(5), key(1), T0 + 10)  # its quarantine outlasts its lease
    store.leases.flush()
    fresh = make_pool(store)
    assert fresh.lease_of(key(1), T0 + 1) == good
    assert fresh.choose(key(1), None, T0 + 1) == good.ip


# ----------------------------------------------------------------------------------- state machine

CLIENTS = 20
SIZE = 6
RESERVED = {0: ip(2), 1: IPv4Address("10.0.0.50")}  # one inside the range, one outside


def _state_key(n: int) -> ClientKey:
    # some clients send a client identifier (option 61) of their own, some "Ethernet + MAC", some none
    client_id = {0: b"\xff" + bytes([n]) * 4, 1: b"\x01" + mac(n).packed}.get(n % 3)
    return ClientKey(mac(n), client_id)


STATE_KEYS = [_state_key(n) for n in range(CLIENTS)]


def state_key(n: int) -> ClientKey:
    return STATE_KEYS[n]


_MACHINE_STORE: dict[Path, Store] = {}


def _machine_store() -> Store:
    """One SQLite file for all state-machine runs (creating the schema per run would dominate the time)."""
    if not _MACHINE_STORE:
        shm = Path("/dev/shm")  # RAM-backed when there is one: the runs commit often, fsync would dominate
        directory = Path(tempfile.mkdtemp(prefix="netboot-pool-", dir=shm if shm.is_dir() else None))
        _MACHINE_STORE[directory] = open_store(f"sqlite:///{directory / 'leases.db'}")
    return next(iter(_MACHINE_STORE.values()))


class PoolMachine(RuleBasedStateMachine):
    """Random DISCOVER/REQUEST/RELEASE/DECLINE/time/restart across 20 clients and six addresses.

    A model written from the RFC's side (who was ACKed what, until when) checks every answer the pool gives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.store = _machine_store()
        self.store.leases.replace_all([])  # every run starts from an empty table
        self.repo = LeaseRepo(self.store.engine)
        self.reservations = {mac(n): address for n, address in RESERVED.items()}
        self.pool = self._new_pool()
        self.now = T0
        self.bound: dict[int, tuple[IPv4Address, float]] = {}  # ACKed: client -> (address, expires)
        self.offered: dict[int, tuple[IPv4Address, float]] = {}
        self.quarantine: dict[IPv4Address, float] = {}

    def _new_pool(self) -> LeasePool:
        return LeasePool(
            FIRST, ip(SIZE - 1), lease_time=LEASE_TIME, repo=self.repo, reservations=self.reservations
        )

    # -- model helpers

    def holder(self, address: IPv4Address, exclude: int) -> int | None:
        for n, (bound_ip, expires) in self.bound.items():
            if n != exclude and bound_ip == address and expires > self.now:
                return n
        return None

    def check_grantable(self, n: int, address: IPv4Address) -> None:
        """The pool offers or binds ``address`` to client n: the model must agree that is allowed."""
        other = self.holder(address, n)
        assert other is None, f"{address} given to {n} while bound to {other}"
        assert self.quarantine.get(address, 0) <= self.now, f"{address} given to {n} during quarantine"
        for m, (offer_ip, until) in self.offered.items():
            if m != n and offer_ip == address and until > self.now:
                pytest.fail(f"{address} given to {n} while held for {m}'s offer")
        reserved_for = next((m for m, r in RESERVED.items() if r == address), None)
        assert reserved_for in (None, n), f"{address} is reserved for {reserved_for}, given to {n}"
        if n in RESERVED:
            assert address == RESERVED[n]
        else:
            assert FIRST <= address <= ip(SIZE - 1)

    # -- rules

    @rule(n=st.integers(0, CLIENTS - 1), asks=st.none() | st.integers(-1, SIZE).map(ip))
    def discover(self, n: int, asks: IPv4Address | None) -> None:
        offered = self.pool.choose(state_key(n), asks, self.now)
        if offered is None:
            return
        self.check_grantable(n, offered)
        self.pool.hold_offer(offered, state_key(n), self.now)
        self.offered[n] = (offered, self.now + OFFER_HOLD)

    @rule(n=st.integers(0, CLIENTS - 1), pick=st.integers(-1, SIZE))
    def request(self, n: int, pick: int) -> None:
        """REQUEST for the offered address (pick -1), or any address (INIT-REBOOT, renewing)."""
        if pick == -1:
            if n not in self.offered:
                return
            address = self.offered[n][0]
        else:
            address = ip(pick)
        if not self.pool.allocatable(address, state_key(n), self.now):
            return
        self.check_grantable(n, address)
        lease = self.pool.commit(address, state_key(n), None, self.now)
        assert (lease.ip, lease.expires) == (address, self.now + LEASE_TIME)
        self.bound[n] = (address, lease.expires)
        self.offered.pop(n, None)

    @rule(n=st.integers(0, CLIENTS - 1), pick=st.integers(-1, SIZE))
    def release(self, n: int, pick: int) -> None:
        if pick == -1 and n not in self.bound:
            return
        address = self.bound[n][0] if pick == -1 else ip(pick)
        if self.pool.release(address, state_key(n), self.now):
            assert self.bound.get(n, (None,))[0] == address, f"{n} released {address}, which it never held"
            self.bound[n] = (address, self.now)

    @rule(n=st.integers(0, CLIENTS - 1), pick=st.integers(-1, SIZE))
    def decline(self, n: int, pick: int) -> None:
        if pick == -1 and n not in self.bound:
            return
        address = self.bound[n][0] if pick == -1 else ip(pick)
        if self.pool.decline(address, state_key(n), self.now):
            other = self.holder(address, n)
            assert other is None, f"{n} declined {address}, bound to {other}: that is not its to decline"
            self.quarantine[address] = self.now + LEASE_TIME
            if self.bound.get(n, (None,))[0] == address:
                del self.bound[n]

    @rule(seconds=st.sampled_from([1, 10, OFFER_HOLD + 1, LEASE_TIME // 2, LEASE_TIME + 1]))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def restart(self) -> None:
        """Flush, then a new pool over the same database: offers are forgotten, leases are not."""
        before = self.pool.leases()
        self.repo.flush()
        self.repo = LeaseRepo(self.store.engine)  # a new process: nothing staged, all read back
        self.pool = self._new_pool()
        self.offered.clear()
        assert self.pool.leases() == before

    # -- invariants

    @invariant()
    def no_address_twice_and_one_lease_per_client(self) -> None:
        active = [lease for lease in self.pool.leases() if lease.active(self.now)]
        assert len({lease.ip for lease in active}) == len(active)
        owners = [identity(lease.mac, lease.client_id) for lease in active]
        assert len(set(owners)) == len(owners), f"a client holds two active leases: {active}"

    @invariant()
    def pool_agrees_with_the_model(self) -> None:
        for n in range(CLIENTS):
            lease = self.pool.lease_of(state_key(n), self.now)
            bound = self.bound.get(n)
            if bound is not None and bound[1] > self.now:
                assert lease is not None and (lease.ip, lease.expires) == bound, (n, lease, bound)
            else:
                assert lease is None, (n, lease, bound)


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(
    max_examples=250, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_state_machine_sanity() -> None:
    """The model itself: a plain DORA for every client fills the range and no more."""
    machine = PoolMachine()
    try:
        for n in range(2, CLIENTS):
            machine.discover(n, None)
            machine.request(n, -1)
        bound_ips = [address for address, _ in machine.bound.values()]
        assert len(bound_ips) == SIZE - 1  # one of the six is reserved for client 0
        machine.no_address_twice_and_one_lease_per_client()
        machine.pool_agrees_with_the_model()
    finally:
        machine.teardown()


@pytest.fixture(scope="module", autouse=True)
def _remove_machine_store() -> Iterator[None]:
    yield
    for directory, store in _MACHINE_STORE.items():
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    _MACHINE_STORE.clear()

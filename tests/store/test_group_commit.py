"""The group commit: "seen" updates staged by the DHCP thread ride in the leases' one transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.store import Store, open_store
from netboot.store.leases import Lease
from tests.store.conftest import sqlite_url

T0 = 1_700_000_000.0
KNOWN = MacAddress.parse("52:54:00:00:01:01")


def mac(n: int) -> MacAddress:
    return MacAddress.from_bytes(bytes.fromhex("5254000002") + bytes([n]))


def lease(n: int, now: float = T0) -> Lease:
    ip = IPv4Address(f"10.0.0.{100 + n}")
    return Lease(ip=ip, mac=mac(n), client_id=None, hostname=None, starts=now, expires=now + 600)


@dataclass
class Traffic:
    """What the engine sent to the database: every statement, and every commit."""

    statements: list[str] = field(default_factory=list)
    commits: int = 0

    def clear(self) -> None:
        self.statements.clear()
        self.commits = 0


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    store = open_store(sqlite_url(path))
    store.leave_sightings_to_caller()  # as the daemon's DHCP thread does: its group commit is the writer
    store.systems.add(
        System(
            mac=KNOWN,
            profile="debian",
            state=SystemState.INSTALLED,
            hostname="known",
            arch="bios",
            uuid="11111111-2222-3333-4444-555555555555",
            first_seen=T0 - 1000,
            last_seen=T0 - 1000,
        )
    )
    yield store
    store.close()


@pytest.fixture
def traffic(store: Store) -> Iterator[Traffic]:
    seen = Traffic()

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.statements.append(" ".join(sql.split()))

    def commit(_conn: Any) -> None:
        seen.commits += 1

    event.listen(store.engine, "before_cursor_execute", statement)
    event.listen(store.engine, "commit", commit)
    yield seen
    event.remove(store.engine, "before_cursor_execute", statement)
    event.remove(store.engine, "commit", commit)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read with a connection of its own: what another process (or a restart) would find."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_a_batch_of_sightings_and_leases_is_one_transaction(
    store: Store, traffic: Traffic, path: Path
) -> None:
    for n in range(1, 9):  # eight unknown clients, each DISCOVER staged twice, with leases for half
        store.stage_seen(mac(n), arch="bios", uuid=None, now=T0 + n)
        store.stage_seen(mac(n), arch="bios", uuid=None, now=T0 + n + 0.5)
        if n % 2:
            store.leases.stage(lease(n).ip, lease(n))
    store.stage_seen(KNOWN, arch="uefi-x64", uuid=None, now=T0 + 10)
    assert (traffic.statements, traffic.commits) == ([], 0)  # staging writes nothing

    assert store.flush() == 4 + 9  # four leases, nine machines
    assert traffic.commits == 1
    # the leases, which of the MACs are known (the per-minute cap counts only new ones), one upsert, and,
    # as new machines were added, the trim to limits.discovered_max
    assert len(traffic.statements) == 5, traffic.statements
    delete_leases, insert_leases, known, upsert, trim = traffic.statements
    assert delete_leases.startswith("DELETE FROM leases")
    assert insert_leases.startswith("INSERT INTO leases")
    assert known.startswith("SELECT systems.mac FROM systems WHERE systems.mac IN")
    assert upsert.startswith("INSERT INTO systems") and "ON CONFLICT (mac) DO UPDATE" in upsert
    assert trim.startswith("DELETE FROM systems WHERE systems.state = ?")

    assert len(rows(path, "SELECT ip FROM leases")) == 4
    assert len(rows(path, "SELECT mac FROM systems WHERE state = 'discovered'")) == 8
    traffic.clear()
    assert store.flush() == 0  # nothing left staged, nothing sent
    assert (traffic.statements, traffic.commits) == ([], 0)


def test_nothing_reaches_the_database_before_the_flush(store: Store, path: Path) -> None:
    store.stage_seen(mac(1), arch="bios", uuid=None, now=T0)
    store.stage_seen(KNOWN, arch="bios", uuid=None, now=T0 + 5)
    store.leases.stage(lease(1).ip, lease(1))
    # documented: a MAC only staged is not in the store yet, and a known one still shows its old sighting
    assert store.systems.get(mac(1)) is None
    known = store.systems.get(KNOWN)
    assert known is not None and known.last_seen == T0 - 1000
    assert rows(path, "SELECT count(*) FROM leases") == [(0,)]
    store.flush()
    assert store.systems.get(mac(1)) is not None
    assert rows(path, "SELECT count(*) FROM leases") == [(1,)]


def test_an_unknown_mac_becomes_a_discovered_system_at_the_flush(store: Store) -> None:
    uuid = "4c4c4544-0042-3510-8052-b4c04f384d32"
    store.stage_seen(mac(7), arch="uefi-x64", uuid=uuid, now=T0 + 1)
    store.flush()
    system = store.systems.get(mac(7))
    assert system is not None
    assert (system.state, system.profile, system.hostname, system.token) == (
        SystemState.DISCOVERED,
        None,
        None,
        None,
    )
    assert (system.arch, system.uuid, system.first_seen, system.last_seen) == (
        "uefi-x64",
        uuid,
        T0 + 1,
        T0 + 1,
    )
    assert (dict(system.variables), dict(system.labels), system.local_boot) == ({}, {}, None)


def test_stages_for_one_mac_coalesce(store: Store, traffic: Traffic) -> None:
    store.stage_seen(mac(3), arch="bios", uuid="aaaaaaaa-0000-0000-0000-000000000000", now=T0 + 1)
    store.stage_seen(mac(3), arch="uefi-x64", uuid=None, now=T0 + 3)  # no UUID this time: keep the last
    store.stage_seen(mac(3), arch=None, uuid=None, now=T0 + 2)  # an older packet handled late
    assert store.flush() == 1
    assert sum(s.startswith("INSERT INTO systems") for s in traffic.statements) == 1
    assert traffic.commits == 1
    system = store.systems.get(mac(3))
    assert system is not None
    # the latest stage that says something wins; a time is the earliest and the latest of them all
    assert (system.arch, system.uuid) == ("uefi-x64", "aaaaaaaa-0000-0000-0000-000000000000")
    assert (system.first_seen, system.last_seen) == (T0 + 1, T0 + 3)


def test_a_known_system_gets_its_sighting_and_keeps_everything_else(store: Store) -> None:
    before = store.systems.get(KNOWN)
    assert before is not None
    store.stage_seen(KNOWN, arch="uefi-x64", uuid=None, now=T0 + 42)
    store.flush()
    after = store.systems.get(KNOWN)
    assert after is not None
    assert (after.last_seen, after.arch) == (T0 + 42, "uefi-x64")
    assert after.uuid == before.uuid  # a sighting without a UUID does not erase the known one
    assert (after.state, after.profile, after.hostname, after.first_seen, after.token) == (
        before.state,
        before.profile,
        before.hostname,
        before.first_seen,
        before.token,
    )


def test_a_system_registered_between_stage_and_flush_keeps_its_registration(store: Store) -> None:
    # the API registers the MAC while its DISCOVER waits in the batch: the flush must not clobber it
    store.stage_seen(mac(9), arch="bios", uuid=None, now=T0 + 1)
    store.systems.add(System(mac=mac(9), profile="alma", state=SystemState.INSTALL, hostname="new9"))
    store.flush()
    system = store.systems.get(mac(9))
    assert system is not None
    assert (system.state, system.profile, system.hostname) == (SystemState.INSTALL, "alma", "new9")
    assert (system.arch, system.last_seen) == ("bios", T0 + 1)


def test_a_failed_flush_writes_nothing_and_keeps_everything_staged(store: Store, path: Path) -> None:
    store.leases.stage(lease(1).ip, lease(1))
    store.stage_seen(mac(1), arch="bios", uuid=None, now=T0)
    # take the table away underneath (another process's doing, as far as this store can tell)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE systems RENAME TO systems_away")
    conn.close()
    with pytest.raises(Exception, match="systems"):
        store.flush()
    assert rows(path, "SELECT count(*) FROM leases") == [(0,)]  # the leases' part rolled back with it
    store.stage_seen(mac(1), arch="uefi-x64", uuid=None, now=T0 + 1)  # staged meanwhile: newer wins
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE systems_away RENAME TO systems")
    conn.close()
    assert store.flush() == 2
    assert rows(path, "SELECT ip, mac FROM leases") == [("10.0.0.101", mac(1).hex)]
    system = store.systems.get(mac(1))
    assert system is not None and (system.arch, system.first_seen, system.last_seen) == (
        "uefi-x64",
        T0,
        T0 + 1,
    )


def test_leases_flush_alone_still_makes_leases_durable(store: Store, path: Path) -> None:
    # the transport's older flush: leases only, sightings stay staged for Store.flush
    store.leases.stage(lease(2).ip, lease(2))
    store.stage_seen(mac(2), arch="bios", uuid=None, now=T0)
    assert store.leases.flush() == 1
    assert rows(path, "SELECT ip FROM leases") == [("10.0.0.102",)]
    assert store.systems.get(mac(2)) is None
    assert store.flush() == 1
    assert store.systems.get(mac(2)) is not None


def test_a_flushed_batch_is_there_for_the_next_process(store: Store, path: Path) -> None:
    store.leases.stage(lease(4).ip, lease(4))
    store.stage_seen(mac(4), arch="bios", uuid=None, now=T0)
    store.flush()
    again = open_store(sqlite_url(path))  # as after kill -9 and a restart: a new engine on the file
    try:
        assert again.leases.by_ip(lease(4).ip) == lease(4)
        assert again.systems.get(mac(4)) is not None
    finally:
        again.close()


def test_seen_still_records_at_once_for_the_http_side(store: Store) -> None:
    first = store.systems.seen(mac(5), arch=None, uuid=None, now=T0)
    assert first.state is SystemState.DISCOVERED and first.first_seen == T0
    known = store.systems.seen(KNOWN, arch=None, uuid=None, now=T0 + 1)
    assert (known.last_seen, known.arch, known.hostname) == (T0 + 1, "bios", "known")


# ------------------------------------------------------- what the DHCP transport flushes, and when


def test_replies_wait_for_leases_only_and_sightings_ride_along(store: Store, traffic: Traffic,
                                                                path: Path) -> None:
    store.stage_seen(mac(6), arch="bios", uuid=None, now=T0)
    assert store.flush_for_replies() == 0  # OFFERs and ProxyDHCP answers: nothing to wait for
    assert (traffic.statements, traffic.commits) == ([], 0)
    store.leases.stage(lease(6).ip, lease(6))
    assert store.flush_for_replies() == 2  # an ACK: its lease, and the sighting in the same transaction
    assert traffic.commits == 1
    assert rows(path, "SELECT mac FROM systems WHERE state = 'discovered'") == [(mac(6).hex,)]


def test_sightings_alone_are_written_once_the_oldest_has_waited(store: Store, traffic: Traffic,
                                                                path: Path) -> None:
    assert store.flush_due(linger=0.2) == 0  # nothing staged
    store.stage_seen(mac(7), arch="bios", uuid=None, now=T0)
    assert store.flush_due(linger=60.0) == 0  # staged just now: not due
    assert (traffic.statements, traffic.commits) == ([], 0)
    time.sleep(0.25)
    store.stage_seen(mac(8), arch="bios", uuid=None, now=T0 + 1)  # a later one does not restart the wait
    assert store.flush_due(linger=0.2) == 2
    assert traffic.commits == 1
    assert {r[0] for r in rows(path, "SELECT mac FROM systems")} >= {mac(7).hex, mac(8).hex}
    assert store.flush_due(linger=0.0) == 0  # and nothing is left


def test_close_writes_the_staged_sightings(path: Path) -> None:
    store = open_store(sqlite_url(path))
    store.stage_seen(mac(9), arch="bios", uuid=None, now=T0)
    store.close()
    assert rows(path, "SELECT mac FROM systems") == [(mac(9).hex,)]


def test_without_a_dhcp_thread_the_store_writes_sightings_itself_and_never_leases(path: Path) -> None:
    """``dhcp: off`` (the site's own DHCP server) or the CLI: no group commit runs, so the store's own
    writer stores a sighting within about twice SEEN_LINGER; a staged lease stays for its ACK's flush."""
    store = open_store(sqlite_url(path))
    try:
        store.leases.stage(lease(9).ip, lease(9))
        store.stage_seen(mac(9), arch="x86_64-efi", uuid=None, now=T0)
        assert rows(path, "SELECT mac FROM systems") == []  # staged: nothing written in front of a reply
        deadline = time.monotonic() + 5
        while not rows(path, "SELECT mac FROM systems") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(path, "SELECT mac, state, arch FROM systems") == [
            (mac(9).hex, "discovered", "x86_64-efi")]
        assert rows(path, "SELECT count(*) FROM leases") == [(0,)]
        assert store.leases.pending()
    finally:
        store.close()


def test_with_the_dhcp_thread_writing_the_store_leaves_sightings_to_it(store: Store, path: Path) -> None:
    store.stage_seen(mac(10), arch="bios", uuid=None, now=T0)
    time.sleep(1.0)  # four of the store writer's windows: it would have written by now
    assert rows(path, f"SELECT mac FROM systems WHERE mac = '{mac(10).hex}'") == []
    assert store.flush_due(linger=0.0) == 1

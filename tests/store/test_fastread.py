"""The hot read by MAC outside the pool: the same System as the engine's read, and never a stale one."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.store import Store, open_store
from netboot.store.systems import _one_by
from tests.store.conftest import sqlite_url

MAC = MacAddress.parse("52:54:00:0f:00:01")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(sqlite_url(tmp_path / "netboot.db"))
    yield store
    store.close()


def test_the_fast_read_is_the_engines_read(store: Store) -> None:
    assert store.systems._by_mac is not None  # an SQLite file: the fast path is the one in use
    store.systems.add(System(mac=MAC, profile="debian", state=SystemState.INSTALL, hostname="fast1",
                             variables={"disk": "/dev/vda", "n": 2}, labels={"rack": "r1"}, token="t" * 32))
    with store.engine.connect() as conn:
        through_engine = _one_by(conn, "mac", MAC.hex)
    assert store.systems.get(MAC) == through_engine
    assert store.systems.get(MacAddress.parse("52:54:00:0f:00:02")) is None


def test_a_commit_by_another_connection_is_seen_at_the_next_read(store: Store, tmp_path: Path) -> None:
    store.systems.seen(MAC, arch="bios", uuid=None, now=1.0)
    first = store.systems.get(MAC)
    assert first is not None and first.state is SystemState.DISCOVERED
    # another process (the CLI) registers the machine: the daemon's very next read must see it
    other = sqlite3.connect(tmp_path / "netboot.db")
    other.execute("UPDATE systems SET state = 'install', profile = 'debian' WHERE mac = ?", (MAC.hex,))
    other.commit()
    other.close()
    again = store.systems.get(MAC)
    assert again is not None and (again.state, again.profile) == (SystemState.INSTALL, "debian")


def test_each_thread_reads_on_its_own_connection(store: Store) -> None:
    store.systems.seen(MAC, arch="bios", uuid=None, now=1.0)
    found: list[System | None] = []
    threads = [threading.Thread(target=lambda: found.append(store.systems.get(MAC))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(found) == 4 and all(s is not None and s.mac == MAC for s in found)
    assert len(store.systems._by_mac._opened) == 4  # type: ignore[union-attr]


def test_a_database_in_memory_reads_through_the_engine() -> None:
    store = open_store("sqlite://")
    try:
        assert store.systems._by_mac is None
        store.systems.seen(MAC, arch="bios", uuid=None, now=1.0)
        assert store.systems.get(MAC) is not None
    finally:
        store.close()


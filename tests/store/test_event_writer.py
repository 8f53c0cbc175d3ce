"""The event writer: events batched over a bounded window, durable after it, and ``kill -9`` loses no more.

Every case runs over a real SQLite file, read back through a second connection as another process would.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from netboot.events import Event
from netboot.mac import MacAddress
from netboot.store import Store, open_store
from netboot.store.events import LINGER, EventRepo
from tests.store.conftest import sqlite_url

REPO = Path(__file__).resolve().parents[2]
MAC = MacAddress.parse("52:54:00:00:0e:01")


def dhcp_event(n: int) -> Event:
    return Event(phase="dhcp", summary=f"OFFER ipxe.efi #{n}", mac=MAC, client_ip=None, time=time.time(),
                 detail={"message": "OFFER", "n": n})


def stored_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def wait_count(path: Path, wanted: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := stored_count(path)) < wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    store = open_store(sqlite_url(path))
    yield store
    store.close()


def commits_of(engine: Engine) -> list[float]:
    """A list that gains the time of every commit the engine makes from now on."""
    seen: list[float] = []
    event.listen(engine, "commit", lambda _conn: seen.append(time.monotonic()))
    return seen


def test_events_arriving_within_the_linger_share_one_transaction(store: Store, path: Path) -> None:
    commits = commits_of(store.engine)
    # one event a millisecond, the way a storm's DHCP answers come: about 0.1 s in all, inside one window
    for n in range(100):
        store.events.write(dhcp_event(n))
        time.sleep(0.001)
    assert wait_count(path, 100, LINGER + 10) == 100
    # a writer committing as events come would have made about a hundred transactions
    assert len(commits) <= 3, commits


def test_an_event_is_stored_after_the_linger_without_anyone_asking(store: Store, path: Path) -> None:
    store.events.write(dhcp_event(0))
    written = time.monotonic()
    time.sleep(LINGER / 3)
    assert stored_count(path) == 0  # still gathering: the window is not over
    assert wait_count(path, 1, LINGER + 10) == 1
    assert time.monotonic() - written >= LINGER


def test_wait_idle_stores_at_once_instead_of_lingering(store: Store, path: Path) -> None:
    repo = EventRepo(store.engine, linger=60.0)
    try:
        repo.write(dhcp_event(0))
        started = time.monotonic()
        assert repo.wait_idle(10)
        assert time.monotonic() - started < 10
        assert stored_count(path) == 1
    finally:
        repo.close()


def test_a_backlog_is_stored_batch_after_batch_without_lingering_again(store: Store, path: Path) -> None:
    """A full batch means more is queued: the writer lingers once per burst, not once per batch (ten
    batches each lingering 0.5 s would take 5 s)."""
    repo = EventRepo(store.engine, batch=10, linger=0.5)
    try:
        started = time.monotonic()
        for n in range(100):
            repo.write(dhcp_event(n))
        assert wait_count(path, 100, 10) == 100
        assert time.monotonic() - started < 2.5
    finally:
        repo.close()


def test_close_stores_what_is_queued(path: Path) -> None:
    store = open_store(sqlite_url(path))
    for n in range(10):
        store.events.write(dhcp_event(n))
    store.close()
    assert stored_count(path) == 10


#: run in a child process: an event, then past the window a second event and a state change, then kill -9
_KILLED_CHILD = """
import os, signal, sys, time
from netboot.events import Event
from netboot.mac import MacAddress
from netboot.store import open_store
from netboot.store.events import LINGER
store = open_store(sys.argv[1])
mac = MacAddress.parse("52:54:00:00:0e:01")
store.events.write(Event(phase="dhcp", summary="old", mac=mac, client_ip=None, time=time.time(), detail={}))
time.sleep(LINGER + 1.0)
store.events.write(Event(phase="dhcp", summary="new", mac=mac, client_ip=None, time=time.time(), detail={}))
store.systems.seen(mac, arch="x86_64-efi", uuid=None, now=time.time())
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_loses_only_the_last_window_of_events_and_no_state(path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", _KILLED_CHILD, sqlite_url(path)], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    conn = sqlite3.connect(path)
    try:
        summaries = [r[0] for r in conn.execute("SELECT summary FROM events ORDER BY id")]
        systems = [r[0] for r in conn.execute("SELECT mac FROM systems")]
    finally:
        conn.close()
    assert summaries[:1] == ["old"]  # older than the window: durable
    assert set(summaries) <= {"old", "new"}  # the newest may be lost, and nothing else
    assert systems == [MAC.hex]  # a state change is written before the call returns

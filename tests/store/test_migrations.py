"""Migrations: a release 0.1.0 database upgrades without loss, a new one matches the tables, a newer one
is refused, a failed upgrade changes nothing."""

from __future__ import annotations

import sqlite3
import threading
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.store import SchemaTooNew, SchemaTooOld, StoreError, migrate, open_store
from netboot.store.engine import make_engine
from netboot.store.schema import metadata
from tests.store.conftest import dump, sqlite_url, table_sql

RELEASE_COUNTS = {
    "systems": 4,
    "leases": 3,
    "events": 5,
    "users": 2,
    "api_tokens": 2,
    "web_sessions": 1,
    "audit": 3,
}


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


#: columns the revisions after release 0.1.0 added, by table (a release database has them NULL)
ADDED_COLUMNS = {
    "systems": {"local_boot", "token_ip", "token_expires", "boot_chain"},
    "api_tokens": {"expires", "role"},
}


def set_revision(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()


def test_release_database_upgrades_without_loss(release_db: Path) -> None:
    before = dump(release_db)
    assert {t: len(rows) for t, rows in before.items()} == RELEASE_COUNTS

    store = open_store(sqlite_url(release_db))
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert schema_diff(store.engine) == []  # the adopted database is exactly the tables of this code
        # every row kept, every value the same; the only change is the columns added since, NULL everywhere
        after = dump(release_db)
        assert after.keys() == before.keys()
        for table, rows in before.items():
            added = ADDED_COLUMNS.get(table, set())
            assert [{k: v for k, v in r.items() if k not in added} for r in after[table]] == rows, table
            assert all(r[c] is None for r in after[table] for c in added), table

        # and the store reads them as the release wrote them
        web = store.systems.get(MacAddress.parse("52:54:00:00:00:01"))
        assert web is not None
        assert (web.hostname, web.profile, web.state, web.ip) == (
            "web01",
            "debian-12",
            SystemState.INSTALL,
            IPv4Address("192.168.50.11"),
        )
        assert dict(web.variables) == {"disk": "/dev/sda", "packages": ["nginx", "curl"]}
        assert (web.arch, web.last_seen, web.local_boot) == ("bios", 1_700_000_300.0, None)
        stray = store.systems.get(MacAddress.parse("52:54:00:00:00:04"))
        assert stray is not None and stray.state is SystemState.DISCOVERED and stray.arch == "uefi-x64"
        lease = store.leases.by_ip(IPv4Address("192.168.50.101"))
        assert lease is not None and lease.hostname == "web01" and lease.client_id is not None
        assert [e.phase for e in store.events.list()] == ["dhcp", "tftp", "http", "boot-script", "discovered"]
        assert store.users.verify("admin", "correct horse battery") is not None
        assert [(t.user, t.name, t.active) for t in store.tokens.list()] == [
            ("admin", "ci pipeline", True),
            ("viewer", "dashboard", False),
        ]
        assert [(a.action, a.ok) for a in store.audit.list()] == [
            ("login", False),
            ("user.add", True),
            ("system.add", True),
        ]
    finally:
        store.close()

    again = open_store(sqlite_url(release_db))  # a second start finds it current and changes nothing
    again.close()
    assert dump(release_db) == after


def test_revision_1_is_exactly_the_release_schema(tmp_path: Path, release_db: Path) -> None:
    fresh = tmp_path / "fresh.db"
    migrate.upgrade(sqlite_url(fresh), revision=migrate.RELEASE_0_1)
    assert table_sql(fresh) == table_sql(release_db)


def test_new_database_is_made_by_the_migrations_and_matches_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "data" / "netboot.db"
    assert migrate.upgrade(sqlite_url(path)) == (None, migrate.head_revision())
    engine = make_engine(sqlite_url(path))
    try:
        assert schema_diff(engine) == []
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.check(engine)
    finally:
        engine.dispose()
    assert migrate.upgrade(sqlite_url(path)) == (migrate.head_revision(), migrate.head_revision())


def test_local_boot_round_trips(tmp_path: Path) -> None:
    from dataclasses import replace

    from netboot.inventory import System

    store = open_store(sqlite_url(tmp_path / "netboot.db"))
    try:
        mac = MacAddress.parse("52:54:00:12:34:56")
        store.systems.add(System(mac=mac, profile="p", state=SystemState.INSTALLED, local_boot="sanboot"))
        got = store.systems.get(mac)
        assert got is not None and got.local_boot == "sanboot"
        store.systems.save(replace(got, local_boot=None))
        got = store.systems.get(mac)
        assert got is not None and got.local_boot is None
    finally:
        store.close()


def test_boot_chain_round_trips(tmp_path: Path) -> None:
    from dataclasses import replace

    from netboot.inventory import System

    store = open_store(sqlite_url(tmp_path / "netboot.db"))
    try:
        mac = MacAddress.parse("52:54:00:12:34:56")
        store.systems.add(System(mac=mac, profile="p", state=SystemState.INSTALL, boot_chain="shim-grub"))
        got = store.systems.get(mac)
        assert got is not None and got.boot_chain == "shim-grub"
        store.systems.save(replace(got, boot_chain="ipxe", local_boot="exit"))
        got = store.systems.get(mac)
        assert got is not None and (got.boot_chain, got.local_boot) == ("ipxe", "exit")
        store.systems.save(replace(got, boot_chain=None))
        got = store.systems.get(mac)
        assert got is not None and got.boot_chain is None and got.local_boot == "exit"
        # a sighting of a known system keeps its override; an unknown MAC is discovered without one
        store.systems.save(replace(got, boot_chain="shim-grub"))
        store.systems.seen(mac, arch="uefi-x64", uuid=None, now=1_800_000_000.0)
        stray = MacAddress.parse("52:54:00:12:34:57")
        store.systems.seen(stray, arch=None, uuid=None, now=1_800_000_000.0)
        store.flush()
        got, new = store.systems.get(mac), store.systems.get(stray)
        assert got is not None and (got.boot_chain, got.arch) == ("shim-grub", "uefi-x64")
        assert new is not None and new.state is SystemState.DISCOVERED and new.boot_chain is None
    finally:
        store.close()


def test_a_revision_3_database_gains_boot_chain_and_keeps_its_systems(tmp_path: Path) -> None:
    # the database of the netboot before boot_chain: its systems keep every value and inherit the chain
    path = tmp_path / "netboot.db"
    migrate.upgrade(sqlite_url(path), revision="0003")
    assert "boot_chain" not in table_sql(path)["systems"]
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO systems (mac, hostname, profile, state, variables, labels, local_boot)"
            " VALUES ('525400123456', 'web1', 'debian12-preseed', 'installed', '{}', ?, 'exit')",
            ('{"rack": "r1"}',),
        )
    conn.close()
    before = dump(path)["systems"]
    store = open_store(sqlite_url(path))
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert schema_diff(store.engine) == []
        after = dump(path)["systems"]
        assert [{k: v for k, v in r.items() if k != "boot_chain"} for r in after] == before
        assert [r["boot_chain"] for r in after] == [None]
        web = store.systems.get(MacAddress.parse("52:54:00:12:34:56"))
        assert web is not None
        assert (web.hostname, web.state, web.local_boot, web.boot_chain) == (
            "web1",
            SystemState.INSTALLED,
            "exit",
            None,
        )
        assert dict(web.labels) == {"rack": "r1"}
    finally:
        store.close()
    engine = make_engine(sqlite_url(path))
    try:  # and back: revision 3 has no boot_chain, the row is still there
        with engine.connect() as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), "0003")
        assert "boot_chain" not in table_sql(path)["systems"]
        assert dump(path)["systems"] == before
    finally:
        engine.dispose()


def test_a_database_from_a_newer_netboot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "netboot.db"
    migrate.upgrade(sqlite_url(path))
    set_revision(path, "9999")
    before = dump(path)
    with pytest.raises(SchemaTooNew) as refused:
        open_store(sqlite_url(path))
    message = str(refused.value)
    assert "revision 9999" in message and "newer netboot" in message
    assert f"its newest is {migrate.head_revision()}" in message
    assert (refused.value.current, refused.value.head) == ("9999", migrate.head_revision())
    engine = make_engine(sqlite_url(path))
    try:
        with pytest.raises(SchemaTooNew):
            migrate.check(engine)
        with pytest.raises(SchemaTooNew):
            migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert dump(path) == before


def test_check_refuses_an_older_database_and_says_what_to_run(tmp_path: Path, release_db: Path) -> None:
    # what open_store does for PostgreSQL: check, and leave the upgrade to `netboot db upgrade`
    empty, old = tmp_path / "empty.db", tmp_path / "old.db"
    migrate.upgrade(sqlite_url(old), revision=migrate.RELEASE_0_1)
    for path, says in (
        (empty, "has no tables"),
        (release_db, "was made by netboot 0.1"),
        (old, f"is at schema revision {migrate.RELEASE_0_1}"),
    ):
        engine = make_engine(sqlite_url(path))
        try:
            with pytest.raises(SchemaTooOld) as refused:
                migrate.check(engine)
        finally:
            engine.dispose()
        assert says in str(refused.value) and "run `netboot db upgrade`" in str(refused.value)
    assert "alembic_version" not in table_sql(release_db)  # checking wrote nothing


def test_a_failed_upgrade_changes_nothing(release_db: Path) -> None:
    # someone added the column by hand: revision 0002 fails, and the stamp before it must not stay
    with sqlite3.connect(release_db) as conn:
        conn.execute("ALTER TABLE systems ADD COLUMN local_boot VARCHAR(16)")
    conn.close()
    before, schema = dump(release_db), table_sql(release_db)
    with pytest.raises(StoreError, match="cannot upgrade the schema"):
        open_store(sqlite_url(release_db))
    assert table_sql(release_db) == schema  # no alembic_version: still a release 0.1.0 database
    assert dump(release_db) == before


def test_half_a_netboot_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE systems (mac TEXT PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreError, match="has some of netboot's tables but not api_tokens, audit"):
        open_store(sqlite_url(path))


def test_downgrade_and_upgrade_again_keep_the_rows(release_db: Path) -> None:
    engine = make_engine(sqlite_url(release_db))
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), migrate.RELEASE_0_1)
        assert migrate.current_revision(engine) == migrate.RELEASE_0_1
        assert "local_boot" not in table_sql(release_db)["systems"]
        assert {t: len(rows) for t, rows in dump(release_db).items()} == RELEASE_COUNTS
        assert migrate.upgrade(engine) == (migrate.RELEASE_0_1, migrate.head_revision())
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_two_processes_starting_at_once_migrate_once(tmp_path: Path) -> None:
    # the daemon and a CLI command opening a new data directory together: one creates, the other waits
    # for its lock and finds the schema current (without the lock the second fails on "table exists")
    url = sqlite_url(tmp_path / "netboot.db")
    engines = [make_engine(url), make_engine(url)]
    start = threading.Barrier(2)
    results: list[migrate.Upgrade] = []
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        start.wait()
        try:
            results.append(migrate.upgrade(engine))
        except BaseException as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    head = migrate.head_revision()
    assert sorted(results, key=lambda r: r.from_rev or "") == [(None, head), (head, head)]


def test_new_revision_writes_the_next_file_with_the_differences(tmp_path: Path) -> None:
    # the tables equal the newest revision, so the skeleton has nothing to do yet
    path = migrate.new_revision("add a thing", directory=tmp_path)
    assert path.parent == tmp_path and path.name.startswith(f"{int(migrate.head_revision()) + 1:04d}_add")
    text = path.read_text()
    assert f"down_revision = '{migrate.head_revision()}'" in text
    body = text.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert [line.strip() for line in body.splitlines() if line.strip() and "#" not in line] == ["pass"]
    compile(text, str(path), "exec")


def test_describe() -> None:
    assert migrate.Upgrade(None, "0003").describe() == "schema created at revision 0003"
    assert migrate.Upgrade("0001", "0003").describe() == "schema upgraded from revision 0001 to 0003"
    assert "already at revision 0003" in migrate.Upgrade("0003", "0003").describe()

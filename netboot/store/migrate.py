"""Schema migrations: bring a database to the revision this code expects, or say why it cannot run on it.

The revisions live in :mod:`netboot.store.migrations` and run through alembic, configured here from code
(no ``alembic.ini`` at run time). Entry points:

- :func:`upgrade` -- what ``netboot db upgrade`` runs, and what :func:`netboot.store.open_store` runs by
  itself for SQLite, the default, so a data directory upgrades when the daemon starts;
- :func:`check` -- what ``open_store`` runs for any other database (PostgreSQL): a server must not change a
  schema that other daemons share behind an operator's back, so it refuses to start until someone ran
  ``netboot db upgrade``;
- :func:`current_revision` and :func:`head_revision` for status lines.

A database made by release 0.1.0 has netboot's tables but no ``alembic_version`` (that release used
``create_all``): :func:`upgrade` recognises it, stamps it at revision ``0001`` (exactly that release's
schema) and upgrades from there. An upgrade runs in one transaction under the database's write lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two processes starting at once do not
both migrate and a failed upgrade changes nothing.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from netboot.store.engine import make_engine
from netboot.store.errors import SchemaTooNew, SchemaTooOld, StoreError

log = logging.getLogger("netboot.store")
# alembic logs every context it sets up at INFO (several lines per start); netboot's own line says what
# changed, so only alembic's warnings reach the daemon's log
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: the revision a database made by release 0.1.0 (``create_all``, no version table) is at
RELEASE_0_1 = "0001"
#: the tables release 0.1.0 made; all present and no version table means "made by that release"
RELEASE_0_1_TABLES = frozenset(
    {"leases", "systems", "events", "users", "api_tokens", "web_sessions", "audit"}
)
VERSION_TABLE = "alembic_version"
#: any fixed number: the key of PostgreSQL's transaction-level advisory lock that serialises upgrades
_PG_LOCK_KEY = 0x6E6574626F6F74  # "netboot"


class Upgrade(NamedTuple):
    """What :func:`upgrade` did: from which revision (None: an empty database) to which."""

    from_rev: str | None
    to_rev: str

    def describe(self) -> str:
        if self.from_rev == self.to_rev:
            return f"schema already at revision {self.to_rev} (the newest this netboot knows)"
        if self.from_rev is None:
            return f"schema created at revision {self.to_rev}"
        return f"schema upgraded from revision {self.from_rev} to {self.to_rev}"


def alembic_config(connection: Connection | None = None, *, also: Path | None = None) -> Config:
    """An alembic configuration for netboot's revisions; ``env.py`` runs them on ``connection``.

    ``also`` is one more directory of revisions (where :func:`new_revision` writes outside the package).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if also is not None:
        for option in ("path_separator", "version_path_separator"):  # alembic >= 1.16, and before
            config.set_main_option(option, "os")
        config.set_main_option(
            "version_locations", os.pathsep.join([str(MIGRATIONS / "versions"), str(also)])
        )
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # 0003_what_it_does.py
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    # the revision files ship with the package and do not change while it runs: read them once
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows (and needs)."""
    head = _scripts().get_current_head()
    assert head is not None, "netboot ships at least one revision"
    return head


def _url(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _read_revision(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:  # netboot's history is one line; several heads mean someone else's branches
        raise SchemaTooNew(
            f"database {_url(conn)} is at several schema revisions at once ({', '.join(heads)}); "
            "it was not migrated by this netboot",
            current=",".join(heads),
            head=head_revision(),
        )
    return heads[0] if heads else None


def _is_release_0_1(conn: Connection) -> bool:
    """True for a database made by release 0.1.0: its tables, no version table. Refuses half of them."""
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE in tables or not tables & RELEASE_0_1_TABLES:
        return False
    missing = RELEASE_0_1_TABLES - tables
    if missing:
        raise StoreError(
            f"database {_url(conn)} has some of netboot's tables but not {', '.join(sorted(missing))}, "
            "and no schema revision: it was not made by netboot, so netboot leaves it alone"
        )
    return True


def current_revision(engine: Engine | Connection) -> str | None:
    """The database's schema revision; None when it has none (empty, or made by release 0.1.0)."""
    if isinstance(engine, Connection):
        return _read_revision(engine)
    with engine.connect() as conn:
        return _read_revision(conn)


def _too_new(conn: Connection, current: str, head: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"database {_url(conn)} is at schema revision {current}, which this netboot does not know "
        f"(its newest is {head}): a newer netboot upgraded it. Run that version, or restore a backup "
        "taken before the upgrade",
        current=current,
        head=head,
    )


def _known(current: str) -> bool:
    try:
        return _scripts().get_revision(current) is not None
    except CommandError:
        return False


def _check(conn: Connection) -> None:
    head = head_revision()
    current = _read_revision(conn)
    if current == head:
        return
    if current is not None and not _known(current):
        raise _too_new(conn, current, head)
    if current is None:
        what = "was made by netboot 0.1 (no schema revision)" if _is_release_0_1(conn) else "has no tables"
    else:
        what = f"is at schema revision {current}"
    raise SchemaTooOld(
        f"database {_url(conn)} {what}; this netboot needs revision {head}: run `netboot db upgrade`",
        current=current,
        head=head,
    )


def check(engine: Engine | Connection) -> None:
    """Return when the database is at :func:`head_revision`; else raise :class:`SchemaTooOld` or
    :class:`SchemaTooNew` with a message saying what to do."""
    try:
        if isinstance(engine, Connection):
            _check(engine)
            return
        with engine.connect() as conn:
            _check(conn)
    except StoreError:
        raise
    except SQLAlchemyError as exc:
        url = engine.engine.url.render_as_string(hide_password=True)
        raise StoreError(f"cannot read the schema revision of database {url}: {exc}") from exc


def _lock(conn: Connection) -> None:
    """Take the database's write lock for this transaction, so one process at a time migrates."""
    if conn.dialect.name == "sqlite":
        # pysqlite opens transactions lazily and only before DML; an explicit BEGIN IMMEDIATE makes the
        # DDL below part of this transaction and waits (busy_timeout) for another migrating process
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _upgrade(conn: Connection, revision: str) -> Upgrade:
    head = head_revision()
    current = _read_revision(conn)
    if current is not None and not _known(current):
        raise _too_new(conn, current, head)
    config = alembic_config(conn)
    if current is None and _is_release_0_1(conn):
        log.info(
            "database %s was made by netboot 0.1: recording it as schema revision %s", _url(conn), RELEASE_0_1
        )
        command.stamp(config, RELEASE_0_1)
        current = RELEASE_0_1
    command.upgrade(config, revision)
    after = _read_revision(conn)
    assert after is not None
    return Upgrade(current, after)


def upgrade(target: str | Engine, *, revision: str = "head") -> Upgrade:
    """Bring the database (a URL, or an engine) to ``revision`` (the newest by default) in one transaction.

    Raises :class:`SchemaTooNew` for a database a newer netboot upgraded, :class:`StoreError` for anything
    else that stops it (the message names the database and the reason); the database is then unchanged.
    """
    try:
        engine = make_engine(target) if isinstance(target, str) else target
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot open database {target}: {exc}") from exc
    url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn, conn.begin():
            _lock(conn)
            done = _upgrade(conn, revision)
    except StoreError:
        raise
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise StoreError(f"cannot upgrade the schema of database {url}: {exc}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()
    if done.from_rev != done.to_rev:
        log.info("database %s: %s", url, done.describe())
    return done


def new_revision(message: str, *, directory: Path | None = None) -> Path:
    """Write the next revision's file, with the differences between :mod:`netboot.store.schema` and the
    newest revision filled in (a developer's tool: review the result before committing it).

    It upgrades a scratch SQLite database in memory to the newest revision and compares it with the
    tables; ``directory`` (default: the package's ``versions/``) is where the file goes.
    """
    engine = make_engine("sqlite:///:memory:")
    try:
        with engine.connect() as conn, conn.begin():
            _upgrade(conn, "head")
            config = alembic_config(conn, also=directory)
            script = command.revision(
                config,
                message=message,
                autogenerate=True,
                rev_id=f"{int(head_revision()) + 1:04d}",
                version_path=str(directory) if directory else None,
            )
    finally:
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)

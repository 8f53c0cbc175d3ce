"""``netboot db``: the database's schema (alembic migrations shipped in the package)."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from netboot.cli.common import fail, load, state_options
from netboot.store import StoreError
from netboot.store.engine import make_engine
from netboot.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """The database schema: show its revision, upgrade it.

    The SQLite default is upgraded automatically when netboot starts; a PostgreSQL database is only
    checked at start (a daemon refuses a schema older or newer than its own), so run `netboot db upgrade`
    once after installing a new version, before the daemons.
    """


@db.command("upgrade")
@state_options
def db_upgrade(config_file: Path | None, data_dir: Path | None) -> None:
    """Bring the database named by the configuration to this netboot's newest schema revision.

    Safe to run again (it says the schema is already current) and from several hosts at once (upgrades
    are serialised); a database a newer netboot upgraded is refused, unchanged.
    """
    cfg = load(config_file, data_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = upgrade(cfg.db_url)
    except StoreError as exc:
        fail(str(exc), 1)
    click.echo(done.describe())


@db.command("status")
@state_options
def db_status(config_file: Path | None, data_dir: Path | None) -> None:
    """Print the database's schema revision and the newest one this netboot knows."""
    cfg = load(config_file, data_dir)
    engine = make_engine(cfg.db_url)
    try:
        current = current_revision(engine)
        tables = inspect(engine).get_table_names()
    except SQLAlchemyError as exc:  # an unreachable or unreadable database: one line, not a traceback
        fail(f"cannot read the schema revision of {engine.url!r}: {exc}", 1)
    finally:
        engine.dispose()
    if current is not None:
        shown = current
    elif tables:
        shown = "none recorded (made by netboot 0.1.0, before migrations): `netboot db upgrade` stamps it"
    else:
        shown = "none (empty database)"
    click.echo(f"database revision: {shown}; newest known: {head_revision()}")


COMMANDS = [db]

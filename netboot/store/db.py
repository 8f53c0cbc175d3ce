"""Engine setup and the :class:`Store` facade that the daemon, CLI and web app share."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from netboot.store.accounts import AuditRepo, SessionRepo, TokenRepo, UserRepo
from netboot.store.events import EventRepo
from netboot.store.leases import LeaseRepo
from netboot.store.schema import metadata
from netboot.store.systems import SystemRepo

log = logging.getLogger("netboot.store")


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which URL and why."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create the engine; for SQLite, create the parent directory and set durable pragmas."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """Leases, systems and events over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.leases = LeaseRepo(engine)
        self.systems = SystemRepo(engine)
        self.events = EventRepo(engine)
        self.users = UserRepo(engine)
        self.tokens = TokenRepo(engine)
        self.sessions = SessionRepo(engine)
        self.audit = AuditRepo(engine)

    def close(self) -> None:
        self.events.close()
        self.engine.dispose()


def open_store(url: str) -> Store:
    """Open (and create the tables of) the database at ``url``."""
    try:
        engine = make_engine(url)
        metadata.create_all(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot open database {url}: {exc}") from exc
    return Store(engine)

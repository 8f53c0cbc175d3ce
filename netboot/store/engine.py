"""The SQLAlchemy engine for a database URL, with SQLite set up for durability and several processes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

#: how long a new connection waits for another one to finish before it gives up (as busy_timeout)
BUSY_SECONDS = 10.0


def _use_wal(cur: Any) -> None:
    """Put the database in WAL mode (persistent: once set, later connections find it set).

    Switching needs an exclusive lock, and SQLite does not call the busy handler for it: a new database
    opened by two processes at once (daemon and CLI) would fail one of them with "database is locked"
    while the other creates the tables. So this waits here, as the busy timeout would.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web app read while the DHCP thread commits; FULL makes a commit survive power loss
    # (the group commit keeps that to one fsync per batch); the timeout queues writers of other
    # processes (the CLI beside the daemon) instead of failing them.
    cur = dbapi_connection.cursor()
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """Create the engine; for SQLite, create the parent directory and set durable pragmas."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"future": True}
    if is_sqlite(url):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_SECONDS}
    engine = create_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine

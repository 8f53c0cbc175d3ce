"""One-row lookups on the hot path without SQLAlchemy's per-call machinery, for an SQLite file.

:meth:`netboot.store.systems.SystemRepo.get` is asked on every DHCP DISCOVER and every boot script.
Through a pooled SQLAlchemy connection one such read cost about 190 us on this machine, of which SQLite's
own work was about 10 us: the rest is the pool's checkout and reset, the compiled-cache lookup and the
result processing, and in ProxyDHCP it was the largest single cost of an answer (docs/performance.md).

Here each thread keeps one sqlite3 connection of its own, in autocommit mode, so every SELECT starts a
new read of the WAL and sees the latest commit, exactly as a freshly checked-out pooled connection does;
the SQL is the one SQLAlchemy compiles from the repository's own statement, once, so the schema is still
spelled in one place. Only reads go this way; every write keeps the engine's transactions. For any other
database (and for SQLite in memory, which a second connection cannot see) :func:`lookup_for` gives None and
the repository reads through the engine as before.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Select

from netboot.store.engine import BUSY_SECONDS


class RowLookup:
    """``one(value)``: the row ``statement`` (with one bound parameter) selects, as a dict, or None."""

    def __init__(self, path: str, sql: str, json_columns: Iterable[str]) -> None:
        self._path = path
        self._sql = sql
        self._json = tuple(json_columns)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._names: tuple[str, ...] | None = None

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transaction, so no read snapshot outlives its statement
            conn = sqlite3.connect(self._path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def one(self, value: Any) -> dict[str, Any] | None:
        cursor = self._connection().execute(self._sql, (value,))
        row = cursor.fetchone()
        if row is None:
            return None
        if self._names is None:
            self._names = tuple(d[0] for d in cursor.description)
        out = dict(zip(self._names, row, strict=True))
        for column in self._json:
            raw = out.get(column)
            out[column] = json.loads(raw) if raw is not None else None
        return out

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


def lookup_for(engine: Engine, statement: Select[Any], json_columns: Iterable[str]) -> RowLookup | None:
    """A :class:`RowLookup` for ``statement`` on ``engine``'s SQLite file; None for any other database."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    sql = str(statement.compile(dialect=engine.dialect))
    return RowLookup(url.database, sql, json_columns)

"""Persistence: leases, systems, events and accounts through SQLAlchemy (SQLite default, PostgreSQL by URL).

:func:`open_store` is the one entry point; it brings a SQLite database to the current schema by itself and
checks any other (:mod:`netboot.store.migrate`). SQLite runs in WAL mode with ``synchronous=FULL`` so a
committed lease survives ``kill -9`` and power loss; the DHCP transport commits a batch of leases, and the
"seen" updates of the same batch, before it sends the ACKs for them (group commit, :meth:`Store.flush`),
which keeps durability without an fsync per packet. What anonymous boot traffic can make it keep is
bounded by :class:`StoreLimits` (:mod:`netboot.store.caps`).
"""

from netboot.store.caps import StoreLimits
from netboot.store.db import Store, open_store
from netboot.store.errors import SchemaMismatch, SchemaTooNew, SchemaTooOld, StoreError

__all__ = [
    "SchemaMismatch",
    "SchemaTooNew",
    "SchemaTooOld",
    "Store",
    "StoreError",
    "StoreLimits",
    "open_store",
]

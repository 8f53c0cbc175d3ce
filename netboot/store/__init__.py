"""Persistence: leases, systems and events, through SQLAlchemy (SQLite by default, PostgreSQL by URL).

:func:`open_store` is the one entry point. SQLite runs in WAL mode with ``synchronous=FULL`` so a committed
lease survives ``kill -9`` and power loss; the DHCP transport commits a batch of leases before it sends the
ACKs for them (group commit), which keeps durability without an fsync per packet.
"""

from netboot.store.db import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]

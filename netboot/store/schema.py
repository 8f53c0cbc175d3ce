"""The database schema, in SQLAlchemy Core: every table netboot has, in one place, for SQLite and PostgreSQL.

Core rather than the ORM: the DHCP hot path writes a lease per ACK and must stay cheap, and every table
here is a plain record. MACs are stored as 12 lowercase hex digits (:attr:`MacAddress.hex`), addresses as
dotted text, times as UNIX seconds (float).

This is the schema the code expects; the database gets there through the migrations in
:mod:`netboot.store.migrations` (never ``create_all``), and a test checks that a database made by the
migrations matches these tables exactly. Changing a table here therefore means adding a revision there.
Constraints keep the database's default names (no naming convention): revision 1 must be exactly what the
release before migrations made with ``create_all``, so a database adopted from it and a new one agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

leases = Table(
    "leases",
    metadata,
    Column("ip", String(15), primary_key=True),
    Column("mac", String(12), nullable=False, index=True),
    Column("client_id", String(600), nullable=True),
    Column("hostname", String(255), nullable=True),
    Column("starts", Float, nullable=False),
    Column("expires", Float, nullable=False),
    #: ``active``, ``declined`` (address in use by someone else; not handed out until expiry)
    Column("state", String(16), nullable=False, default="active"),
)

systems = Table(
    "systems",
    metadata,
    Column("mac", String(12), primary_key=True),
    Column("hostname", String(255), nullable=True, unique=True),
    Column("profile", String(128), nullable=True),
    Column("ip", String(15), nullable=True, unique=True),
    Column("state", String(16), nullable=False),
    Column("variables", JSON, nullable=False, default=dict),
    Column("labels", JSON, nullable=False, default=dict),
    Column("token", String(64), nullable=True, unique=True),
    Column("arch", String(32), nullable=True),
    Column("uuid", String(36), nullable=True),
    Column("first_seen", Float, nullable=True),
    Column("last_seen", Float, nullable=True),
    Column("updated", Float, nullable=True),
    #: the system's own ``local_boot`` override (see :attr:`netboot.inventory.System.local_boot`); revision 2
    Column("local_boot", String(16), nullable=True),
    #: the address the install token is bound to and when it dies (revision 3; see boot/core.py)
    Column("token_ip", String(45), nullable=True),
    Column("token_expires", Float, nullable=True),
    #: the system's own ``boot_chain`` override (``ipxe``/``shim-grub``, NULL inherits); revision 4
    Column("boot_chain", String(16), nullable=True),
    Index("ix_systems_state_last_seen", "state", "last_seen"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("mac", String(12), nullable=True),
    Column("client_ip", String(45), nullable=True),
    Column("phase", String(32), nullable=False),
    Column("summary", Text, nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Index("ix_events_mac_time", "mac", "time"),
    Index("ix_events_time", "time"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created", Float, nullable=False),
    #: bumped when the password changes: every session made before then stops working
    Column("generation", Integer, nullable=False, default=0),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    #: the first characters of the secret, to recognise a token in lists (not enough to use it)
    Column("hint", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("last_used", Float, nullable=True),
    Column("revoked", Float, nullable=True),
    #: when the token stops working (NULL: until revoked), and the role it acts with (NULL: its user's;
    #: never more than its user's); revision 3
    Column("expires", Float, nullable=True),
    Column("role", String(16), nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("generation", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Column("ok", Boolean, nullable=False, default=True),
    Index("ix_audit_time", "time"),
)

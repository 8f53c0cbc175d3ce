"""The database schema, in SQLAlchemy Core (one definition for SQLite and PostgreSQL).

Core rather than the ORM: the DHCP hot path writes a lease per ACK and must stay cheap, and every table
here is a plain record. MACs are stored as 12 lowercase hex digits (:attr:`MacAddress.hex`), addresses as
dotted text, times as UNIX seconds (float).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
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
)

"""Install tokens bound to an address and a lifetime; API tokens with an expiry and a role; indexes for
retention and capped, paginated lists.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.add_column(sa.Column("token_ip", sa.String(45), nullable=True))
        batch.add_column(sa.Column("token_expires", sa.Float, nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires", sa.Float, nullable=True))
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))
    op.create_index("ix_systems_state_last_seen", "systems", ["state", "last_seen"])
    op.create_index("ix_events_time", "events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_events_time", "events")
    op.drop_index("ix_systems_state_last_seen", "systems")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("role")
        batch.drop_column("expires")
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("token_expires")
        batch.drop_column("token_ip")

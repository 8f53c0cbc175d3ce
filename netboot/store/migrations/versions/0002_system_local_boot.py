"""A system's own ``local_boot`` override (NULL: inherit from its group and profile).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("local_boot", sa.String(16), nullable=True))


def downgrade() -> None:
    # SQLite cannot drop a column of a table with constraints in place: batch mode copies the table
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("local_boot")

"""A system's own ``boot_chain`` override (NULL: inherit from its group, its profile and the site).

``ipxe`` or ``shim-grub`` (UEFI Secure Boot through shim and signed GRUB); see
:attr:`netboot.inventory.System.boot_chain`. Existing systems get NULL, so they keep booting the way
their profile (and the site's ``boot-chain``, ``ipxe`` by default) says, which is today's iPXE chain.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("boot_chain", sa.String(16), nullable=True))


def downgrade() -> None:
    # SQLite cannot drop a column of a table with constraints in place: batch mode copies the table
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("boot_chain")

"""installed plugins, which every Lifecycle process installs at start

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "installed_plugin",
        sa.Column("distribution", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_shown", sa.Text(), nullable=False),
        sa.Column("source_sealed", sa.Text(), nullable=True),
        sa.Column("wheel_name", sa.String(length=255), nullable=True),
        sa.Column("wheel", sa.LargeBinary(), nullable=True),
        sa.Column("installed_by", sa.String(length=255), nullable=True),
        sa.Column("installed_at", sa.Float(), nullable=False),
        sa.Column("uninstalled_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("distribution"),
    )


def downgrade() -> None:
    op.drop_table("installed_plugin")

"""replica ports: which replica of which deployment holds which port, shared by every Lifecycle

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_port",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("replica_id", sa.String(length=128), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("job_version", sa.String(length=128), nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target", "host", "port", name="uq_replica_port"),
    )
    with op.batch_alter_table("replica_port", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_replica_port_replica_id"), ["replica_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("replica_port", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replica_port_replica_id"))
    op.drop_table("replica_port")

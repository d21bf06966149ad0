"""what the pipeline and restarts need: the serving replica, sealed secrets, phase history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployment_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("workspace", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("replica", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sealed_secrets", sa.Text(), nullable=True))
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phases", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("job_type", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_column("job_type")
        batch_op.drop_column("phases")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("sealed_secrets")
        batch_op.drop_column("replica")
        batch_op.drop_column("workspace")
        batch_op.drop_column("deployment_id")

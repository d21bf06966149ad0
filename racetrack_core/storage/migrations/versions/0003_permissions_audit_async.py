"""external consumers, grants, audit events, public endpoint requests, asynchronous calls

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_consumer",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("external_consumer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_consumer_name"), ["name"], unique=True)

    op.create_table(
        "permission",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_name", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("job_family", sa.String(length=64), nullable=True),
        sa.Column("job_version", sa.String(length=128), nullable=True),
        sa.Column("endpoint", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("granted_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("permission", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permission_subject_kind"), ["subject_kind"])
        batch_op.create_index(batch_op.f("ix_permission_subject_name"), ["subject_name"])

    op.create_table(
        "audit_event",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("job_name", sa.String(length=64), nullable=True),
        sa.Column("job_version", sa.String(length=128), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_time"), ["time"])
        batch_op.create_index(batch_op.f("ix_audit_event_kind"), ["kind"])
        batch_op.create_index(batch_op.f("ix_audit_event_actor"), ["actor"])
        batch_op.create_index(batch_op.f("ix_audit_event_job_name"), ["job_name"])

    op.create_table(
        "public_endpoint_request",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("job_version", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("approved_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_name", "job_version", "endpoint", name="uq_public_endpoint"),
    )
    with op.batch_alter_table("public_endpoint_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_public_endpoint_request_job_name"), ["job_name"])

    op.create_table(
        "async_job_call",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("job_version", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("request_headers", sa.Text(), nullable=False),
        sa.Column("request_body", sa.LargeBinary(), nullable=False),
        sa.Column("caller", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("async_job_call", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_async_job_call_job_name"), ["job_name"])
        batch_op.create_index(batch_op.f("ix_async_job_call_status"), ["status"])
        batch_op.create_index(batch_op.f("ix_async_job_call_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_async_job_call_expires_at"), ["expires_at"])


def downgrade() -> None:
    op.drop_table("async_job_call")
    op.drop_table("public_endpoint_request")
    op.drop_table("audit_event")
    op.drop_table("permission")
    op.drop_table("external_consumer")

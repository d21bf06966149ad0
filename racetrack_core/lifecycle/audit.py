"""The audit log: one row per thing someone did that others may need to know about later."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from racetrack_core.storage.models import AuditEvent


class EventKind(StrEnum):
    JOB_DEPLOYED = "job_deployed"
    JOB_REDEPLOYED = "job_redeployed"
    JOB_DELETED = "job_deleted"
    JOB_MOVED = "job_moved"
    DEPLOYMENT_FAILED = "deployment_failed"
    PLUGIN_INSTALLED = "plugin_installed"
    PLUGIN_UNINSTALLED = "plugin_uninstalled"
    PERMISSION_GRANTED = "permission_granted"
    PERMISSION_REVOKED = "permission_revoked"
    USER_REGISTERED = "user_registered"
    USER_ACTIVATED = "user_activated"
    USER_DEACTIVATED = "user_deactivated"
    TOKEN_CREATED = "token_created"  # noqa: S105 (an event name)
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 (an event name)
    PUBLIC_ENDPOINT_APPROVED = "public_endpoint_approved"


def record(
    session: Session,
    kind: EventKind,
    actor: str | None,
    *,
    job_name: str | None = None,
    job_version: str | None = None,
    subject: str | None = None,
    **details: Any,
) -> None:
    """Add an audit event (the caller commits). ``details`` must hold no secret."""
    session.add(
        AuditEvent(
            kind=kind,
            actor=actor,
            job_name=job_name,
            job_version=job_version,
            subject=subject,
            details=json.dumps(details, default=str),
        )
    )

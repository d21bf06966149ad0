"""Rows the Lifecycle tests put in a database directly: running jobs and finished
deployments, as a deployment leaves them, without building or starting anything, and users
with exactly the grants a test needs."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from racetrack_core.lifecycle.accounts import issue_token
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import (
    Deployment,
    DeploymentStatus,
    Job,
    JobFamily,
    JobStatus,
    Permission,
    SubjectKind,
    User,
)


def add_jobs(settings: Settings, *jobs: tuple[str, str], **fields: Any) -> None:
    """Running job records ``(name, version)``, with their families; ``fields`` set other
    columns of each (``workspace``, ``manifest_yaml``...)."""
    engine = connect(settings.database_url)
    with Session(engine) as session:
        for name, version in jobs:
            family = session.exec(select(JobFamily).where(JobFamily.name == name)).first()
            if family is None:
                family = JobFamily(name=name)
                session.add(family)
                session.flush()
            columns: dict[str, Any] = {
                "status": JobStatus.RUNNING,
                "manifest_yaml": f"name: {name}\n",
                "job_type": "python3:1.0.0",
                "infrastructure_target": "local",
                "internal_name": f"{name}-{version}",
                **fields,
            }
            session.add(Job(family_id=family.id, name=name, version=version, **columns))
        session.commit()
    engine.dispose()


def add_deployments(
    settings: Settings, *deployments: tuple[str, str, float], **fields: Any
) -> None:
    """Finished deployment records ``(name, version, created_at)``; ``fields`` set other
    columns of each (``deployed_by``...)."""
    engine = connect(settings.database_url)
    with Session(engine) as session:
        for name, version, created_at in deployments:
            columns: dict[str, Any] = {
                "status": DeploymentStatus.DONE,
                "phase": "done",
                "manifest_yaml": f"name: {name}\n",
                "created_at": created_at,
                "updated_at": created_at,
                **fields,
            }
            session.add(Deployment(job_name=name, job_version=version, **columns))
        session.commit()
    engine.dispose()


def add_user(settings: Settings, username: str, *grants: dict[str, Any]) -> str:
    """An active user who is not staff and holds only ``grants`` (each the columns of a
    grant: ``scope``, ``job_family``...); returns a token of theirs."""
    engine = connect(settings.database_url)
    with Session(engine) as session:
        session.add(User(username=username, password_hash="-", is_active=True))
        for columns in grants:
            session.add(Permission(subject_kind=SubjectKind.USER, subject_name=username, **columns))
        session.commit()
    token = issue_token(engine, SubjectKind.USER, username)
    engine.dispose()
    return token

"""Rows the Lifecycle tests put in a database directly: running jobs, as a deployment leaves
them, without building or starting anything."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import Job, JobFamily, JobStatus


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

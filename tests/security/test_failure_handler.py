"""D3, the pipeline's part: a deployment whose failure handler fails still ends as failed.

A version too long for a file name used to fail in the handler too (``Path.exists`` raises
``File name too long``), and the deployment stayed ``in_progress`` for ever, refusing every
later deploy of that version with 409. The schema now refuses such versions, so the pipeline
is driven here directly, on a real database and the real job type, with one that got through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from racetrack_core import PluginManager
from racetrack_core.lifecycle.deployments import DeployRequest, Pipeline
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import Deployment, DeploymentStatus


@pytest.fixture
def service_and_pipeline(tmp_path: Path) -> Iterator[tuple[LifecycleService, Pipeline]]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'rt.db'}")
    engine = connect(settings.database_url)
    migrate(engine)
    plugins = PluginManager()
    plugins.load()
    service = LifecycleService(settings, plugins, engine)
    pipeline = Pipeline(service)
    yield service, pipeline
    pipeline.close()
    service.close()
    engine.dispose()


def test_a_failing_failure_handler_still_ends_the_deployment_as_failed(
    service_and_pipeline: tuple[LifecycleService, Pipeline],
) -> None:
    service, pipeline = service_and_pipeline
    manifest = {
        "name": "longversion",
        "version": "1.0.0-" + "a" * 300,
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
    }
    request = DeployRequest(
        manifest=manifest,
        job_type=service.plugins.job_types.resolve("python3:latest"),
        target="local",
        deployed_by="admin",
        build_context="",
    )
    deployment_id = pipeline.admit(request, force=False)
    pipeline.run(deployment_id, request)
    with Session(service.engine) as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        assert row.status == DeploymentStatus.FAILED, row
        assert "File name too long" in (row.error or "")
        assert row.finished_at is not None


def test_a_failed_first_deployment_leaves_no_empty_job_folders(
    service_and_pipeline: tuple[LifecycleService, Pipeline],
) -> None:
    service, pipeline = service_and_pipeline
    manifest = {
        "name": "leaves-nothing",
        "version": "1.0.0",
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
    }
    request = DeployRequest(
        manifest=manifest,
        job_type=service.plugins.job_types.resolve("python3:latest"),
        target="local",
        deployed_by="admin",
        build_context="bm90IGEgdGFyLmd6",  # base64 of "not a tar.gz": refused while fetching
    )
    deployment_id = pipeline.admit(request, force=False)
    pipeline.run(deployment_id, request)
    with Session(service.engine) as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        assert row.status == DeploymentStatus.FAILED, row
    assert not (service.jobs_dir / "leaves-nothing").exists()

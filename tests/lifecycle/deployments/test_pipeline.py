"""What the deployment pipeline answers the job watcher: which replicas are in flight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from racetrack_core import PluginManager
from racetrack_core.lifecycle.deployments import Pipeline
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import Deployment


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'rt.db'}")
    engine = connect(settings.database_url)
    migrate(engine)
    pipeline = Pipeline(LifecycleService(settings, PluginManager(), engine))
    yield pipeline
    pipeline.close()
    engine.dispose()


def running_deployment(pipeline: Pipeline) -> str:
    """A deployment in progress, claimed by this pipeline's process."""
    leases = pipeline.leases
    row = Deployment(
        job_name="primer",
        job_version="1.0.0",
        manifest_yaml="name: primer\n",
        claimed_by=leases.holder,
        lease_expires_at=leases.expiry(),
    )
    with Session(leases.engine) as session:
        session.add(row)
        session.commit()
        return row.id


def test_a_replica_is_in_flight_while_its_deployment_holds_it(pipeline: Pipeline) -> None:
    first, second = running_deployment(pipeline), running_deployment(pipeline)
    assert not pipeline.is_in_flight("r1")
    with pipeline.in_flight(first, "r1"), pipeline.in_flight(second, "r2"):
        assert pipeline.is_in_flight("r1")
        assert pipeline.in_flight_replicas() == {"r1", "r2"}
    assert not pipeline.is_in_flight("r1")
    assert pipeline.in_flight_replicas() == frozenset()


def test_a_failed_deployment_releases_its_replica(pipeline: Pipeline) -> None:
    deployment = running_deployment(pipeline)
    with pytest.raises(RuntimeError), pipeline.in_flight(deployment, "r1"):
        raise RuntimeError("the replica never became ready")
    assert not pipeline.is_in_flight("r1")

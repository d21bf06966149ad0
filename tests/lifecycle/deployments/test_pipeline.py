"""What the deployment pipeline answers the job watcher: which replicas are in flight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_core import PluginManager
from racetrack_core.lifecycle.deployments import Pipeline
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'rt.db'}")
    engine = connect(settings.database_url)
    migrate(engine)
    pipeline = Pipeline(LifecycleService(settings, PluginManager(), engine))
    yield pipeline
    pipeline.close()
    engine.dispose()


def test_a_replica_is_in_flight_while_its_deployment_holds_it(pipeline: Pipeline) -> None:
    assert not pipeline.is_in_flight("r1")
    with pipeline.in_flight("r1"), pipeline.in_flight("r2"):
        assert pipeline.is_in_flight("r1")
        assert pipeline.in_flight_replicas() == {"r1", "r2"}
    assert not pipeline.is_in_flight("r1")
    assert pipeline.in_flight_replicas() == frozenset()


def test_a_failed_deployment_releases_its_replica(pipeline: Pipeline) -> None:
    with pytest.raises(RuntimeError), pipeline.in_flight("r1"):
        raise RuntimeError("the replica never became ready")
    assert not pipeline.is_in_flight("r1")

"""A job's environment, its sealed secrets and the one ``JobSpec`` builder that a deployment
and a restart share (``racetrack_core.lifecycle.deployments.environment``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from racetrack_core import PluginManager
from racetrack_core.lifecycle.deployments.environment import (
    JobSecrets,
    family_token,
    job_spec,
    open_job_secrets,
    restored_spec,
    seal_job_secrets,
)
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.manifest import dump_yaml
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import Job, JobFamily

MANIFEST: dict[str, Any] = {
    "name": "primer",
    "version": "1.2.3",
    "owner_email": "someone@example.com",
    "jobtype": "python3:latest",
    "runtime_env": {"PLAIN": "from the manifest", "JOB_NAME": "an attempt to rename"},
    "build_env": {"BUILD_PLAIN": "visible"},
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LifecycleService]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'rt.db'}")
    engine = connect(settings.database_url)
    migrate(engine)
    plugins = PluginManager()
    plugins.load()
    yield LifecycleService(settings, plugins, engine)
    engine.dispose()


def test_reserved_variables_win_over_the_manifest_and_the_runtime_secrets(
    service: LifecycleService, tmp_path: Path
) -> None:
    secrets = JobSecrets("the family token", {"PLAIN": "a secret", "AUTH_TOKEN": "a forgery"})
    spec = job_spec(
        service,
        MANIFEST,
        service.plugins.job_types.resolve("python3:latest"),
        workspace=tmp_path,
        deployment_id="d1",
        timestamp=1700000000,
        secrets=secrets,
        build_env_secrets={"BUILD_SECRET": "hidden"},
    )
    assert spec.env["PLAIN"] == "a secret"
    assert spec.env["JOB_NAME"] == "primer"
    assert spec.env["JOB_VERSION"] == "1.2.3"
    assert spec.env["AUTH_TOKEN"] == "the family token"
    assert spec.env["JOB_DEPLOYMENT_TIMESTAMP"] == "1700000000"
    assert spec.env["PUB_URL"] == service.settings.internal_pub_url
    assert spec.env["REQUEST_TRACING_HEADER"] == "X-Request-Tracing-Id"
    assert spec.build_env == {"BUILD_PLAIN": "visible"}
    assert spec.build_secrets == {"BUILD_SECRET": "hidden"}
    assert spec.all_build_env == {"BUILD_PLAIN": "visible", "BUILD_SECRET": "hidden"}
    assert spec.state_dir == service.jobs_dir / "primer" / "1.2.3" / "d1" / "state"


def test_a_restart_rebuilds_the_spec_the_deployment_ran_without_its_build_secrets(
    service: LifecycleService, tmp_path: Path
) -> None:
    job_type = service.plugins.job_types.resolve("python3:latest")
    secrets = JobSecrets("the family token", {"MODEL_KEY": "a runtime secret"})
    deployed = job_spec(
        service,
        MANIFEST,
        job_type,
        workspace=tmp_path,
        deployment_id="d1",
        timestamp=1700000000,
        secrets=secrets,
        build_env_secrets={"BUILD_SECRET": "hidden"},
    )
    job = _record(
        service, deployed.deployment_id, tmp_path, seal_job_secrets(service.secrets, secrets)
    )

    restored = restored_spec(service, job)

    assert restored.env == deployed.env
    assert (restored.name, restored.version, restored.workspace, restored.state_dir) == (
        deployed.name,
        deployed.version,
        deployed.workspace,
        deployed.state_dir,
    )
    assert restored.deployment_timestamp == deployed.deployment_timestamp
    assert restored.job_type.ref == job_type.ref
    assert "BUILD_SECRET" not in restored.build_env
    assert restored.build_secrets == {}


def test_a_record_without_its_source_cannot_be_restored(
    service: LifecycleService, tmp_path: Path
) -> None:
    job = _record(service, "d1", tmp_path / "gone", None)
    with pytest.raises(RuntimeError, match="no longer on the server; redeploy it"):
        restored_spec(service, job)


def test_sealed_secrets_open_as_they_were_sealed_and_a_record_without_any_opens_empty(
    service: LifecycleService,
) -> None:
    secrets = JobSecrets("token", {"A": "1", "B": "2"})
    sealed = seal_job_secrets(service.secrets, secrets)
    assert "token" not in sealed
    assert open_job_secrets(service.secrets, sealed) == secrets
    assert open_job_secrets(service.secrets, None) == JobSecrets()
    assert "token" not in repr(secrets)


def test_a_family_keeps_one_token_for_all_its_versions(
    service: LifecycleService, tmp_path: Path
) -> None:
    first = family_token(service, "primer")
    assert first
    _record(service, "d1", tmp_path, seal_job_secrets(service.secrets, JobSecrets(first)))
    assert family_token(service, "primer") == first
    assert family_token(service, "another") != first


def _record(
    service: LifecycleService, deployment_id: str, workspace: Path, sealed: str | None
) -> Job:
    with Session(service.engine) as session:
        family = JobFamily(name="primer")
        session.add(family)
        session.flush()
        job = Job(
            family_id=family.id,
            name="primer",
            version="1.2.3",
            manifest_yaml=dump_yaml(MANIFEST),
            job_type="python3:latest",
            infrastructure_target="local",
            deployment_id=deployment_id,
            deployment_timestamp=1700000000,
            workspace=str(workspace),
            sealed_secrets=sealed,
        )
        session.add(job)
        session.commit()
        session.refresh(job)
        session.expunge(job)
        return job

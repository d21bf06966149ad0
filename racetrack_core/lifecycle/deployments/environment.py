"""What a job runs with: its environment variables, its sealed secrets and its ``JobSpec``.

A job's environment is built in one order, later entries winning: the variables plugins add
(``job_runtime_env``), the manifest's ``runtime_env``, the runtime secrets, then the reserved
variables Racetrack sets (``PUB_URL``, ``JOB_NAME``, ``AUTH_TOKEN``, ...). The secrets a job
needs again after a restart (its family's token and its runtime secrets) are kept sealed in
its record. ``job_spec`` is the one place a driver's ``JobSpec`` is made: for a deployment,
and again (``restored_spec``) when the server restarts a job it ran before.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from racetrack_core import events
from racetrack_core.infrastructure import JobSpec
from racetrack_core.lifecycle.accounts import issue_token
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.manifest import dump_yaml, parse_manifest
from racetrack_core.registry import JobType
from racetrack_core.security import SecretBox
from racetrack_core.storage.models import Job, SubjectKind

TRACING_HEADER = "X-Request-Tracing-Id"
#: The folder name of a job's files when its record names no deployment.
RESTORED = "restored"


@dataclass(frozen=True)
class JobSecrets:
    """The secrets kept (sealed) with a job so that it can be started again."""

    family_token: str = field(default="", repr=False)
    runtime_env: dict[str, str] = field(default_factory=dict, repr=False)


def seal_job_secrets(box: SecretBox, secrets: JobSecrets) -> str:
    return box.seal({"family_token": secrets.family_token, "runtime_env": secrets.runtime_env})


def open_job_secrets(box: SecretBox, sealed: str | None) -> JobSecrets:
    """The secrets sealed in a job's record (none for a record without any)."""
    opened = box.open(sealed)
    token = opened.get("family_token")
    runtime_env = opened.get("runtime_env")
    return JobSecrets(
        family_token=token if isinstance(token, str) else "",
        runtime_env=(
            {str(k): str(v) for k, v in runtime_env.items()}
            if isinstance(runtime_env, dict)
            else {}
        ),
    )


def family_token(service: LifecycleService, family: str) -> str:
    """The family's own token (for job-to-job calls): the one its jobs keep sealed, or a new
    one when no job of the family has one yet."""
    with Session(service.engine) as session:
        for job in session.exec(select(Job).where(Job.name == family)):
            token = open_job_secrets(service.secrets, job.sealed_secrets).family_token
            if token:
                return token
    return issue_token(service.engine, SubjectKind.JOB_FAMILY, family)


def deployment_timestamp(service: LifecycleService, name: str, version: str) -> int:
    """Now, in unix seconds, or later than the version's current deployment, so that its
    ``/live`` answer always tells a new replica from an old one."""
    stamp = int(time.time())
    with Session(service.engine) as session:
        job = session.exec(select(Job).where(Job.name == name, Job.version == version)).first()
        if job is not None and job.deployment_timestamp >= stamp:
            stamp = job.deployment_timestamp + 1
    return stamp


def deployment_dir(service: LifecycleService, name: str, version: str, deployment_id: str) -> Path:
    """The folder of one deployment's files: its fetched source and the driver's state."""
    return service.jobs_dir / name / version / (deployment_id or RESTORED)


def job_environment(
    service: LifecycleService,
    manifest: Mapping[str, Any],
    job_type: JobType,
    timestamp: int,
    secrets: JobSecrets,
) -> dict[str, str]:
    """A job's whole runtime environment: plugins' variables, the manifest's
    ``runtime_env``, runtime secrets, then the reserved variables Racetrack sets."""
    env = events.plugin_runtime_env(service.plugins, manifest, job_type)
    env.update({str(k): str(v) for k, v in (manifest.get("runtime_env") or {}).items()})
    env.update(secrets.runtime_env)
    env.update(
        {
            "PUB_URL": service.settings.internal_pub_url,
            "JOB_NAME": str(manifest["name"]),
            "JOB_VERSION": str(manifest["version"]),
            "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
            "JOB_MANIFEST_YAML": dump_yaml(manifest),
            "REQUEST_TRACING_HEADER": TRACING_HEADER,
            "AUTH_TOKEN": secrets.family_token,
        }
    )
    return env


def job_spec(
    service: LifecycleService,
    manifest: Mapping[str, Any],
    job_type: JobType,
    *,
    workspace: Path,
    deployment_id: str,
    timestamp: int,
    secrets: JobSecrets,
    build_env_secrets: Mapping[str, str] | None = None,
    no_cache: bool = False,
) -> JobSpec:
    """What a driver needs to build and run one job version.

    The manifest's plain ``build_env`` and the secret build variables stay apart, so that a
    target can keep the secret ones out of whatever outlives the build (an image's layers).
    A restore passes no build secrets: they live in memory for one deployment only.
    """
    name, version = str(manifest["name"]), str(manifest["version"])
    build_env = {str(k): str(v) for k, v in (manifest.get("build_env") or {}).items()}
    return JobSpec(
        name=name,
        version=version,
        manifest=manifest,
        job_type=job_type,
        workspace=workspace,
        env=job_environment(service, manifest, job_type, timestamp, secrets),
        deployment_id=deployment_id,
        deployment_timestamp=timestamp,
        state_dir=deployment_dir(service, name, version, deployment_id) / "state",
        build_env=build_env,
        build_secrets=dict(build_env_secrets or {}),
        no_cache=no_cache,
    )


def restored_spec(service: LifecycleService, job: Job) -> JobSpec:
    """The spec to start ``job`` again after a restart, from its record and kept source."""
    if not job.workspace or not Path(job.workspace).is_dir():
        raise RuntimeError("its source is no longer on the server; redeploy it")
    return job_spec(
        service,
        parse_manifest(job.manifest_yaml).data,
        service.plugins.job_types.resolve(job.job_type),
        workspace=Path(job.workspace),
        deployment_id=job.deployment_id or "",
        timestamp=job.deployment_timestamp,
        secrets=open_job_secrets(service.secrets, job.sealed_secrets),
    )

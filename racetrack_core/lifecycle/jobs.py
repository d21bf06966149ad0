"""Job records: how they look on the wire, and how a version pattern finds one."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from sqlmodel import Session, select

from racetrack_core import versions
from racetrack_core.lifecycle.answers import DeploymentRecord, JobRecord
from racetrack_core.lifecycle.responses import NotFound
from racetrack_core.redaction import Redactor
from racetrack_core.security import SecretBox
from racetrack_core.storage.models import Deployment, DeploymentStatus, Job, JobStatus

#: Statuses whose versions ``latest`` and ``1.x`` may resolve to (a starting job is not yet).
RESOLVABLE = (JobStatus.RUNNING, JobStatus.ERROR, JobStatus.LOST)


def job_dto(job: Job, external_pub_url: str, *, manifest: bool = True) -> JobRecord:
    """A job as the wire table of DESIGN.md (and racetrack-client's JobDto) describes it, plus
    its ``owner_email``; without ``manifest`` and ``manifest_yaml`` when ``manifest`` is False."""
    record: JobRecord = {
        "id": job.id,
        "name": job.name,
        "version": job.version,
        "status": JobStatus(job.status),
        "create_time": int(job.created_at),
        "update_time": int(job.updated_at),
        "owner_email": owner_email(job.manifest_yaml),
        "internal_name": job.internal_name,
        "pub_url": f"{external_pub_url}/job/{job.name}/{job.version}",
        "error": job.error,
        "notice": job.notice,
        "image_tag": None,
        "deployed_by": job.deployed_by,
        "last_call_time": int(job.last_call_at) if job.last_call_at else None,
        "infrastructure_target": job.infrastructure_target,
        "replica_internal_names": _replica_urls(job),
        "instances": json.loads(job.instances) if job.instances else [],
        "job_type_version": job.job_type,
        "deployment_timestamp": job.deployment_timestamp,
        "infrastructure_stats": {},
    }
    if manifest:
        record["manifest"] = _load_yaml(job.manifest_yaml)
        record["manifest_yaml"] = job.manifest_yaml
    return record


def jobs_json(jobs: Iterable[Job], external_pub_url: str, *, manifest: bool = True) -> bytes:
    """A JSON array of the jobs' records, the same data as ``[job_dto(job, ...), ...]`` (the
    manifest keys come last in each record), made without decoding each manifest into fresh
    objects only to encode it again: its JSON, encoded once per text, is spliced in."""
    records = []
    for job in jobs:
        record = _encode(job_dto(job, external_pub_url, manifest=False))
        if manifest:
            record = (
                f'{record[:-1]},"manifest":{_manifest_json(job.manifest_yaml)}'
                f',"manifest_yaml":{_encode(job.manifest_yaml)}}}'
            )
        records.append(record)
    return f"[{','.join(records)}]".encode()


def deployment_dto(deployment: Deployment, job: JobRecord | None) -> DeploymentRecord:
    warnings = json.loads(deployment.warnings or "[]")
    return {
        "id": deployment.id,
        "status": DeploymentStatus(deployment.status),
        "phase": deployment.phase,
        "phases": [{"phase": p, "time": t} for p, t in json.loads(deployment.phases or "[]")],
        "create_time": int(deployment.created_at),
        "update_time": int(deployment.updated_at),
        "finish_time": int(deployment.finished_at) if deployment.finished_at else None,
        "error": deployment.error,
        "warnings": "\n".join(warnings) if warnings else None,
        "job": job,
        "job_name": deployment.job_name,
        "job_version": deployment.job_version,
        "deployed_by": deployment.deployed_by,
        "infrastructure_target": deployment.infrastructure_target,
        "job_type_version": deployment.job_type,
        "manifest_yaml": deployment.manifest_yaml,
        "image_name": None,
    }


def ongoing_deployment(session: Session, name: str, version: str) -> Deployment | None:
    """The deployment of this job version that is running now, if there is one."""
    return session.exec(
        select(Deployment).where(
            Deployment.job_name == name,
            Deployment.job_version == version,
            Deployment.status == DeploymentStatus.IN_PROGRESS,
        )
    ).first()


def find_deployment(session: Session, deployment_id: str) -> Deployment:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"no deployment with id {deployment_id}")
    return deployment


def find_job(session: Session, name: str, version: str) -> Job:
    """The job ``name`` at ``version``: exact, ``latest`` or a pattern like ``1.x``.

    ``latest`` is the highest stable version that is running (or was, if it is now in error
    or lost); a pattern, the highest stable one matching it. NotFound says what exists.
    """
    jobs = list(session.exec(select(Job).where(Job.name == name)))
    if not jobs:
        raise NotFound(f"no job named {name}")
    exact = [job for job in jobs if job.version == version]
    if exact:
        return exact[0]
    if not versions.is_pattern(version) or versions.is_semver(version):
        known = ", ".join(sorted((job.version for job in jobs), key=_sort_key))
        raise NotFound(f"job {name} has no version {version}; deployed versions: {known}")
    candidates = {job.version: job for job in jobs if job.status in RESOLVABLE}
    chosen = versions.resolve(version, candidates, stable_only=True)
    if chosen is None:
        if version == "latest":
            raise NotFound(f"job {name} has no stable version running yet")
        raise NotFound(f"job {name} has no stable version matching {version}")
    return candidates[chosen]


def find_exact_job(session: Session, name: str, version: str) -> Job:
    """The job ``name`` at exactly ``version`` (not ``latest`` or a pattern), for routes that
    change one version. NotFound says which versions exist."""
    jobs = list(session.exec(select(Job).where(Job.name == name)))
    if not jobs:
        raise NotFound(f"no job named {name}")
    for job in jobs:
        if job.version == version:
            return job
    known = ", ".join(sorted((job.version for job in jobs), key=_sort_key))
    raise NotFound(f"job {name} has no version {version}; give the exact version, one of: {known}")


def _sort_key(version: str) -> Any:
    return versions.parse(version) if versions.is_semver(version) else versions.parse("0.0.0")


#: JSON as the API answers it (``responses.JSONAnswer``): compact, UTF-8 left as it is.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _load_yaml(text: str) -> Any:
    """A job's manifest as data: a fresh copy, parsed once per text (listing 1000 jobs would
    otherwise spend a second in the pure-Python YAML parser)."""
    return json.loads(_manifest_json(text))


@functools.lru_cache(maxsize=4096)
def _manifest_json(text: str) -> str:
    """A manifest's text as JSON (``null`` for no text), parsed once per text."""
    return _encode(YAML(typ="safe").load(text)) if text else "null"


@functools.lru_cache(maxsize=4096)
def owner_email(text: str) -> str | None:
    """The manifest's ``owner_email``, or None, read once per text."""
    manifest = _load_yaml(text)
    owner = manifest.get("owner_email") if isinstance(manifest, dict) else None
    return owner if isinstance(owner, str) else None


def _replica_urls(job: Job) -> list[str]:
    """The base URL of every instance serving the job (Pub spreads calls across them)."""
    if job.replica:
        try:
            endpoints = json.loads(job.replica).get("endpoints")
        except (ValueError, AttributeError):
            endpoints = None
        if isinstance(endpoints, list) and endpoints:
            return [str(url) for url in endpoints]
    return [job.internal_name] if job.internal_name else []


def job_redactor(secrets: SecretBox, job: Job) -> Redactor:
    """Hides the job's runtime secrets and its family's token in what the job printed."""
    opened = secrets.open(job.sealed_secrets)
    runtime = opened.get("runtime_env")
    values = [str(value) for value in runtime.values()] if isinstance(runtime, dict) else []
    if isinstance(opened.get("family_token"), str):
        values.append(str(opened["family_token"]))
    return Redactor(values)

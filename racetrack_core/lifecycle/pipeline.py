"""The deployment pipeline: a fixed order of phases, each delegating to the chosen plugin.

    queued → fetching source → validating manifest → building → starting
           → waiting for live and ready → switching traffic → post-deploy hooks → done | failed

The API answers at once with the deployment's id; a worker thread runs the phases and records
each one (with its time) so that clients can follow. A failed deployment stops only its own new
replica: the version that served before keeps serving. Secrets (git credentials, secret
variables) live in memory for the run; runtime secrets are kept sealed for restarts; nothing
secret reaches the build log, an error or the database in plain text.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from racetrack_core import events
from racetrack_core.auth import Caller
from racetrack_core.errors import ManifestError, RacetrackError
from racetrack_core.infrastructure import DeployError, JobSpec, Replica
from racetrack_core.lifecycle import audit, probes
from racetrack_core.lifecycle.accounts import issue_token
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.jobs import job_dto
from racetrack_core.lifecycle.permissions import grant_family_owner
from racetrack_core.lifecycle.service import LifecycleService, replica_from_json, replica_to_json
from racetrack_core.manifest import dump_yaml, find_manifest, load_manifest
from racetrack_core.redaction import Redactor
from racetrack_core.registry import JobType
from racetrack_core.source import SourceError, fetch_git, remove_secret_files, unpack_build_context
from racetrack_core.storage.models import (
    Deployment,
    DeploymentStatus,
    Job,
    JobFamily,
    JobStatus,
    PublicEndpointRequest,
    SubjectKind,
    now,
)

log = logging.getLogger("racetrack.pipeline")

TRACING_HEADER = "X-Request-Tracing-Id"
#: How often buffered build-log lines are written to the deployment row (seconds).
LOG_FLUSH_INTERVAL = 0.5


@dataclass
class DeployRequest:
    """A validated request to deploy; holds secrets in memory only."""

    manifest: dict[str, Any]
    job_type: JobType
    target: str
    deployed_by: str
    warnings: list[str] = field(default_factory=list)
    git_credentials: tuple[str, str] | None = field(default=None, repr=False)
    build_env_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    runtime_env_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    build_context: str | None = field(default=None, repr=False)
    #: Who asked for the deployment (the family's first deployer becomes its owner).
    caller: Caller | None = None
    #: A folder already on the server to deploy from instead of git (used by moves).
    source_dir: Path | None = None
    no_cache: bool = False

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def secret_values(self) -> list[str]:
        values = [*self.build_env_secrets.values(), *self.runtime_env_secrets.values()]
        if self.git_credentials:
            values.append(self.git_credentials[1])
        return [value for value in values if value and len(value) >= 3]


class Recorder:
    """Writes a deployment's phases, warnings and build log to its row, scrubbing secrets."""

    def __init__(self, service: LifecycleService, deployment_id: str, secrets: list[str]) -> None:
        self._service = service
        self.deployment_id = deployment_id
        self.scrub = Redactor(secrets)  # every secret, in its common encodings too
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._lines.append(self.scrub(text.rstrip("\n")))
            due = time.monotonic() - self._last_flush > LOG_FLUSH_INTERVAL
        if due:
            self.flush()

    def flush(self, **changes: Any) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            self._last_flush = time.monotonic()
        with Session(self._service.engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            if lines:
                row.build_log += "".join(f"{line}\n" for line in lines)
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = now()
            session.add(row)
            session.commit()

    def phase(self, name: str) -> None:
        log.info("deployment %s: %s", self.deployment_id, name)
        self.line(f"==> {name}")
        with Session(self._service.engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            phases = [*json.loads(row.phases), [name, round(now(), 3)]]
        self.flush(phase=name, phases=json.dumps(phases))

    def warn(self, message: str) -> None:
        with Session(self._service.engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            warnings = [*json.loads(row.warnings), self.scrub(message)]
        self.flush(warnings=json.dumps(warnings))


class Pipeline:
    """Runs deployments on a pool of worker threads."""

    def __init__(self, service: LifecycleService) -> None:
        self.service = service
        self._pool = ThreadPoolExecutor(
            max_workers=service.settings.deploy_workers, thread_name_prefix="deploy"
        )
        #: Replicas started by deployments still running (the watcher must not call them orphans).
        self.in_flight: set[str] = set()
        self.lock = threading.Lock()
        self._retire_timers: list[threading.Timer] = []

    def submit(self, deployment_id: str, request: DeployRequest) -> None:
        """Run a recorded deployment in the background."""
        self._pool.submit(self.run, deployment_id, request)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for timer in self._retire_timers:
            timer.cancel()

    def run(self, deployment_id: str, request: DeployRequest) -> None:
        """Run a recorded deployment to its end in this thread; failures are recorded."""
        recorder = Recorder(self.service, deployment_id, request.secret_values())
        try:
            self._run(recorder, request)
        except Exception as exc:
            if isinstance(exc, RacetrackError):
                message = recorder.scrub(str(exc))
            else:
                log.exception("deployment %s failed unexpectedly", deployment_id)
                message = recorder.scrub(f"internal error: {type(exc).__name__}: {exc}")
            tail = getattr(exc, "log_tail", "")
            try:  # whatever fails here, the deployment still ends as failed
                if tail:
                    recorder.line(tail)
                recorder.line(f"deployment failed: {message}")
                shutil.rmtree(self._workdir(request, deployment_id), ignore_errors=True)
            finally:
                recorder.flush(
                    status=DeploymentStatus.FAILED, error=message, finished_at=now(), phase="failed"
                )
            with Session(self.service.engine) as session:
                audit.record(
                    session,
                    EventKind.DEPLOYMENT_FAILED,
                    request.deployed_by,
                    job_name=request.name,
                    job_version=request.version,
                    deployment_id=deployment_id,
                    error=message,
                )
                session.commit()

    def _run(self, recorder: Recorder, request: DeployRequest) -> None:
        service = self.service
        for warning in request.warnings:
            recorder.warn(warning)
        workdir = self._workdir(request, recorder.deployment_id)
        workdir.mkdir(parents=True, exist_ok=True)

        recorder.phase("fetching source")
        workspace = self._fetch(recorder, request, workdir / "source")
        remove_secret_files(workspace, request.manifest, log=recorder.line)

        recorder.phase("validating manifest")
        self._compare_with_repository(recorder, request, workspace)

        timestamp = self._deployment_timestamp(request)
        family_token = self._family_token(request.name)
        spec = JobSpec(
            name=request.name,
            version=request.version,
            manifest=request.manifest,
            job_type=request.job_type,
            workspace=workspace,
            env=self._runtime_env(request, timestamp, family_token),
            deployment_id=recorder.deployment_id,
            deployment_timestamp=timestamp,
            state_dir=workdir / "state",
            build_env={
                **{str(k): str(v) for k, v in (request.manifest.get("build_env") or {}).items()},
                **request.build_env_secrets,
            },
            no_cache=request.no_cache,
        )
        driver = service.driver(request.target)

        recorder.phase("building")
        driver.prepare(spec, recorder.line)

        recorder.phase("starting")
        replica = driver.start(spec)
        with self.lock:
            self.in_flight.add(replica.id)
        try:
            recorder.phase("waiting for live and ready")
            probes.wait_until_serving(
                replica,
                live_timeout=service.settings.job_live_timeout,
                ready_timeout=service.settings.job_ready_timeout,
                crashed=lambda: _crash_reason(driver.replicas(), replica),
                tail=lambda: driver.logs(spec.name, spec.version, tail=20),
            )
            recorder.phase("switching traffic")
            old, old_target, old_deployment = self._switch(
                recorder, request, spec, replica, family_token
            )
        except BaseException:
            driver.stop(replica)
            raise
        finally:
            with self.lock:
                self.in_flight.discard(replica.id)
        if old is not None and old.id != replica.id:
            old_workdir = self._workdir(request, old_deployment) if old_deployment else None
            self._retire_later(
                old_target, old, delete=old_target != request.target, workdir=old_workdir
            )

        recorder.phase("post-deploy hooks")
        with Session(service.engine) as session:
            job = session.exec(
                select(Job).where(Job.name == spec.name, Job.version == spec.version)
            ).one()
            dto = job_dto(job, service.settings.external_pub_url)
        for failure in events.notify_job_deployed(
            service.plugins, dto, request.manifest, request.deployed_by
        ):
            recorder.warn(failure)
        recorder.line("deployment done")
        recorder.flush(status=DeploymentStatus.DONE, phase="done", finished_at=now())

    def _workdir(self, request: DeployRequest, deployment_id: str) -> Path:
        return self.service.jobs_dir / request.name / request.version / deployment_id

    def _fetch(self, recorder: Recorder, request: DeployRequest, dest: Path) -> Path:
        if dest.exists():
            shutil.rmtree(dest)
        if request.source_dir is not None:
            recorder.line("copying the job's source already on the server")
            shutil.copytree(request.source_dir, dest, symlinks=True)
            return dest
        if request.build_context is not None:
            recorder.line("unpacking the uploaded build context")
            return unpack_build_context(
                request.build_context,
                dest,
                max_bytes=self.service.settings.build_context_max_bytes,
            )
        git = request.manifest.get("git") or {}
        try:
            fetched = fetch_git(
                str(git["remote"]),
                branch=git.get("branch"),
                directory=str(git.get("directory") or "."),
                credentials=request.git_credentials,
                dest=dest,
                log=recorder.line,
            )
        except SourceError:
            raise
        recorder.line(f"fetched commit {fetched.commit}")
        return fetched.path

    def _compare_with_repository(
        self, recorder: Recorder, request: DeployRequest, workspace: Path
    ) -> None:
        try:
            path = find_manifest(workspace)
        except (ManifestError, FileNotFoundError, RacetrackError):
            return
        try:
            stored = load_manifest(path).data
        except ManifestError:
            recorder.warn(f"{path.name} in the source does not load; the manifest sent was used")
            return
        sent = {k: v for k, v in request.manifest.items() if k in stored}
        if dump_yaml(stored) != dump_yaml(sent):
            recorder.warn(
                f"{path.name} in the fetched source differs from the manifest that was sent; "
                "the manifest sent was used (push your changes?)"
            )

    def _deployment_timestamp(self, request: DeployRequest) -> int:
        stamp = int(time.time())
        with Session(self.service.engine) as session:
            job = session.exec(
                select(Job).where(Job.name == request.name, Job.version == request.version)
            ).first()
            if job is not None and job.deployment_timestamp >= stamp:
                stamp = job.deployment_timestamp + 1
        return stamp

    def _family_token(self, family: str) -> str:
        """The family's own token (for job-to-job calls): kept sealed with its jobs."""
        with Session(self.service.engine) as session:
            for job in session.exec(select(Job).where(Job.name == family)):
                token = self.service.secrets.open(job.sealed_secrets).get("family_token")
                if isinstance(token, str):
                    return token
        return issue_token(self.service.engine, SubjectKind.JOB_FAMILY, family)

    def _runtime_env(self, request: DeployRequest, timestamp: int, token: str) -> dict[str, str]:
        return self.restore_env(
            request.manifest, request.job_type, timestamp, token, request.runtime_env_secrets
        )

    def restore_env(
        self,
        manifest: Mapping[str, Any],
        job_type: JobType,
        timestamp: int,
        token: str,
        runtime_secrets: Mapping[str, str],
    ) -> dict[str, str]:
        """A job's whole runtime environment: plugins' variables, the manifest's
        ``runtime_env``, runtime secrets, then the reserved variables Racetrack sets."""
        env = events.plugin_runtime_env(self.service.plugins, manifest, job_type)
        env.update({str(k): str(v) for k, v in (manifest.get("runtime_env") or {}).items()})
        env.update(runtime_secrets)
        env.update(
            {
                "PUB_URL": self.service.settings.internal_pub_url,
                "JOB_NAME": str(manifest["name"]),
                "JOB_VERSION": str(manifest["version"]),
                "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
                "JOB_MANIFEST_YAML": dump_yaml(manifest),
                "REQUEST_TRACING_HEADER": TRACING_HEADER,
                "AUTH_TOKEN": token,
            }
        )
        return env

    def _switch(
        self,
        recorder: Recorder,
        request: DeployRequest,
        spec: JobSpec,
        replica: Replica,
        family_token: str,
    ) -> tuple[Replica | None, str, str | None]:
        """Point the job's record (which Pub reads) at the new replica; return the old one
        and the target it runs on."""
        sealed = self.service.secrets.seal(
            {"family_token": family_token, "runtime_env": request.runtime_env_secrets}
        )
        with Session(self.service.engine) as session:
            family = session.exec(select(JobFamily).where(JobFamily.name == spec.name)).first()
            if family is None:
                family = JobFamily(name=spec.name)
                session.add(family)
                session.flush()
                if request.caller is not None:
                    grant_family_owner(session, request.caller, spec.name)
            job = session.exec(
                select(Job).where(Job.name == spec.name, Job.version == spec.version)
            ).first()
            old = replica_from_json(job.replica) if job is not None else None
            old_target = job.infrastructure_target if job is not None else request.target
            old_deployment = job.deployment_id if job is not None else None
            redeploy = job is not None
            if job is None:
                job = Job(
                    family_id=family.id,
                    name=spec.name,
                    version=spec.version,
                    manifest_yaml="",
                    job_type="",
                    infrastructure_target=request.target,
                )
            job.status = JobStatus.RUNNING
            job.manifest_yaml = dump_yaml(request.manifest)
            job.job_type = request.job_type.ref
            job.infrastructure_target = request.target
            job.internal_name = replica.url
            job.replica = replica_to_json(replica)
            job.deployment_timestamp = spec.deployment_timestamp
            job.deployment_id = recorder.deployment_id
            job.workspace = str(spec.workspace)
            job.sealed_secrets = sealed
            job.deployed_by = request.deployed_by
            job.error = None
            job.updated_at = now()
            session.add(job)
            request_public_endpoints(
                session,
                spec.name,
                spec.version,
                request.manifest.get("public_endpoints") or [],
                keep_approvals=redeploy,
            )
            audit.record(
                session,
                EventKind.JOB_REDEPLOYED if redeploy else EventKind.JOB_DEPLOYED,
                request.deployed_by,
                job_name=spec.name,
                job_version=spec.version,
                deployment_id=recorder.deployment_id,
            )
            session.commit()
            session.refresh(job)
            deployment = session.get(Deployment, recorder.deployment_id)
            assert deployment is not None
            deployment.job_id = job.id
            session.add(deployment)
            session.commit()
        return old, old_target, old_deployment

    def _retire_later(
        self, target: str, old: Replica, *, delete: bool, workdir: Path | None
    ) -> None:
        """Stop the replaced replica once Pub's cached routes have moved to the new one;
        after a move, also remove the job's files from the former target."""
        delay = self.service.settings.pub_auth_cache_ttl + 1.0
        driver = self.service.driver(target)

        def retire(replica: Replica) -> None:
            driver.retire(replica)
            if delete:
                driver.delete(replica.name, replica.version)
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

        timer = threading.Timer(delay, _retire_quietly, args=(retire, old))
        timer.daemon = True
        self._retire_timers = [t for t in self._retire_timers if t.is_alive()] + [timer]
        timer.start()


def request_public_endpoints(
    session: Session, name: str, version: str, endpoints: list[str], *, keep_approvals: bool
) -> None:
    """Make the manifest's ``public_endpoints`` the requests of this job version (the caller
    commits). New ones start inactive, waiting for a staff member's approval; on a redeploy
    (``keep_approvals``) an endpoint that stays keeps its approval. Endpoints no longer listed
    are dropped, and a first deployment drops whatever a deleted job of that version left.
    """
    wanted = dict.fromkeys("/" + str(endpoint).strip("/") for endpoint in endpoints)
    existing = session.exec(
        select(PublicEndpointRequest).where(
            PublicEndpointRequest.job_name == name, PublicEndpointRequest.job_version == version
        )
    ).all()
    kept: set[str] = set()
    for row in existing:
        if keep_approvals and row.endpoint in wanted:
            kept.add(row.endpoint)
        else:
            session.delete(row)
    session.flush()
    for endpoint in wanted:
        if endpoint not in kept:
            session.add(
                PublicEndpointRequest(job_name=name, job_version=version, endpoint=endpoint)
            )


def _retire_quietly(retire: Callable[[Replica], None], replica: Replica) -> None:
    try:
        retire(replica)
    except Exception:
        log.exception("stopping the replaced replica %s failed", replica.id)


def _crash_reason(states: list[Any], replica: Replica) -> str | None:
    for state in states:
        if state.replica.id == replica.id:
            if str(state.status) == "error":
                # The first line is the reason; the job's last lines reach the build log.
                reason = str(state.error or "the job's process keeps crashing")
                return reason.strip().splitlines()[0]
            return None
    return "the job's process is gone"


def secret_vars(body: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``secret_vars: {build_env, runtime_env}`` from a deploy request, as string mappings."""
    raw = body.get("secret_vars") or {}
    if not isinstance(raw, Mapping):
        raise DeployError("secret_vars must be an object with build_env and runtime_env")
    result = []
    for key in ("build_env", "runtime_env"):
        values = raw.get(key) or {}
        if not isinstance(values, Mapping):
            raise DeployError(f"secret_vars.{key} must be an object of names to values")
        result.append({str(k): str(v) for k, v in values.items()})
    return result[0], result[1]

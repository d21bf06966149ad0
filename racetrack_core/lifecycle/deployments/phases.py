"""The phases of one deployment, in their fixed order, each delegating to the chosen plugin.

    fetching source → validating manifest → building → starting
        → waiting for live and ready → switching traffic → post-deploy hooks → done | failed

A failure at any phase stops only the deployment's own new replica, removes its files and
ends its record as failed with the error (scrubbed of the request's secrets) and the job's
last log lines; the version that served before keeps serving.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, select

from racetrack_core import events
from racetrack_core.errors import ManifestError, RacetrackError
from racetrack_core.infrastructure import Replica
from racetrack_core.lifecycle import probes
from racetrack_core.lifecycle.deployments.environment import (
    JobSecrets,
    deployment_dir,
    deployment_timestamp,
    family_token,
    job_spec,
    seal_job_secrets,
)
from racetrack_core.lifecycle.deployments.records import Recorder, record_serving_job
from racetrack_core.lifecycle.deployments.request import DeployRequest
from racetrack_core.lifecycle.jobs import job_dto
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.manifest import dump_yaml, find_manifest, load_manifest
from racetrack_core.source import fetch_git, remove_secret_files, unpack_build_context
from racetrack_core.source_hosts import allowed_hosts
from racetrack_core.storage.models import Job

log = logging.getLogger("racetrack.pipeline")


class ReplicaKeeper(Protocol):
    """What the phases need from the pipeline that runs them."""

    def in_flight(self, deployment_id: str, replica_id: str) -> AbstractContextManager[None]:
        """Mark a started replica as a deployment's own until the block ends."""
        ...

    def retire_later(
        self, target: str, replica: Replica, *, delete: bool, workdir: Path | None
    ) -> None:
        """Stop a replaced replica once Pub's cached routes have moved off it."""
        ...


class Phases:
    """Runs deployments' phases with the service's drivers and records."""

    def __init__(self, service: LifecycleService, keeper: ReplicaKeeper) -> None:
        self._service = service
        self._keeper = keeper

    def run(self, deployment_id: str, request: DeployRequest) -> None:
        """Run a recorded deployment to its end in this thread; failures are recorded."""
        recorder = Recorder(self._service.engine, deployment_id, request.secret_values())
        try:
            self._run(recorder, request)
        except Exception as exc:
            self._fail(recorder, request, exc)

    def _fail(self, recorder: Recorder, request: DeployRequest, exc: Exception) -> None:
        """End a deployment that raised ``exc``: log tail, files removed, record failed."""
        if isinstance(exc, RacetrackError):
            message = recorder.scrub(str(exc))
        else:
            log.exception("deployment %s failed unexpectedly", recorder.deployment_id)
            message = recorder.scrub(f"internal error: {type(exc).__name__}: {exc}")
        tail = getattr(exc, "log_tail", "")
        try:  # whatever fails here, the deployment still ends as failed
            if tail:
                recorder.line(tail)
            workdir = self._workdir(request, recorder.deployment_id)
            shutil.rmtree(workdir, ignore_errors=True)
            _remove_empty(workdir.parent, workdir.parent.parent)  # the version's, the family's
        finally:
            recorder.failed(request, message)

    def _run(self, recorder: Recorder, request: DeployRequest) -> None:
        service = self._service
        for warning in request.warnings:
            recorder.warn(warning)
        workdir = self._workdir(request, recorder.deployment_id)
        workdir.mkdir(parents=True, exist_ok=True)

        recorder.phase("fetching source")
        workspace = self._fetch(recorder, request, workdir / "source")
        remove_secret_files(workspace, request.manifest, log=recorder.line)

        recorder.phase("validating manifest")
        self._compare_with_repository(recorder, request, workspace)

        secrets = JobSecrets(family_token(service, request.name), request.runtime_env_secrets)
        spec = job_spec(
            service,
            request.manifest,
            request.job_type,
            workspace=workspace,
            deployment_id=recorder.deployment_id,
            timestamp=deployment_timestamp(service, request.name, request.version),
            secrets=secrets,
            build_env_secrets=request.build_env_secrets,
            no_cache=request.no_cache,
        )
        driver = service.driver(request.target)

        recorder.phase("building")
        driver.prepare(spec, recorder.line)

        recorder.phase("starting")
        replica = driver.start(spec)
        with self._keeper.in_flight(recorder.deployment_id, replica.id):
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
                replaced = record_serving_job(
                    service.engine,
                    request,
                    spec,
                    replica,
                    deployment_id=recorder.deployment_id,
                    sealed_secrets=seal_job_secrets(service.secrets, secrets),
                )
            except BaseException:
                driver.stop(replica)
                raise
        if replaced is not None and replaced.replica.id != replica.id:
            self._keeper.retire_later(
                replaced.target,
                replaced.replica,
                delete=replaced.target != request.target,
                workdir=(
                    self._workdir(request, replaced.deployment_id)
                    if replaced.deployment_id
                    else None
                ),
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
        recorder.done()

    def _workdir(self, request: DeployRequest, deployment_id: str) -> Path:
        return deployment_dir(self._service, request.name, request.version, deployment_id)

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
                max_bytes=self._service.settings.build_context_max_bytes,
            )
        git = request.manifest.get("git") or {}
        fetched = fetch_git(
            str(git["remote"]),
            branch=git.get("branch"),
            directory=str(git.get("directory") or "."),
            credentials=request.git_credentials,
            dest=dest,
            log=recorder.line,
            allowed_hosts=allowed_hosts(self._service.settings.source_allowed_hosts),
        )
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


def _crash_reason(states: list[Any], replica: Replica) -> str | None:
    for state in states:
        if state.replica.id == replica.id:
            if str(state.status) == "error":
                # The first line is the reason; the job's last lines reach the build log.
                reason = str(state.error or "the job's process keeps crashing")
                return reason.strip().splitlines()[0]
            return None
    return "the job's process is gone"


def _remove_empty(*folders: Path) -> None:
    """Remove each folder in turn while it is empty (another deployment may be using it)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, gone already, or not ours to remove
            return

"""The one place where a ``JobSpec`` is made, for a deployment and for a restore alike."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from racetrack_core.infrastructure import JobSpec
from racetrack_core.registry import JobType


def job_spec(
    manifest: Mapping[str, Any],
    job_type: JobType,
    *,
    workspace: Path,
    env: Mapping[str, str],
    deployment_id: str,
    deployment_timestamp: int,
    state_dir: Path,
    build_secrets: Mapping[str, str] | None = None,
    no_cache: bool = False,
) -> JobSpec:
    """The spec of the job version a validated ``manifest`` describes.

    The manifest's plain ``build_env`` and the secret build variables stay apart, so that a
    target can keep the secret ones out of whatever outlives the build (an image's layers).
    A restore passes no build secrets: they live in memory for one deployment only.
    """
    plain = manifest.get("build_env") or {}
    return JobSpec(
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        manifest=manifest,
        job_type=job_type,
        workspace=workspace,
        env=env,
        deployment_id=deployment_id,
        deployment_timestamp=deployment_timestamp,
        state_dir=state_dir,
        build_env={str(key): str(value) for key, value in plain.items()},
        build_secrets=dict(build_secrets or {}),
        no_cache=no_cache,
    )

"""A request to deploy: what ``POST /deploy`` sends, validated, with its secrets in memory.

``parse_deploy_body`` turns the API body into a ``DeployRequest`` (or a 400/413 naming the
field); redeploys and moves build one from a job's kept source instead (``rebuild_routes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racetrack_core.auth import Caller
from racetrack_core.errors import ManifestError
from racetrack_core.infrastructure import DeployError
from racetrack_core.lifecycle.responses import BadRequest, PayloadTooLarge
from racetrack_core.manifest import received_manifest
from racetrack_core.plugins import PluginManager
from racetrack_core.registry import JobType
from racetrack_core.schema import validate_manifest
from racetrack_core.settings import Settings
from racetrack_core.source import SourceError, check_context_size, check_remote_host
from racetrack_core.source.remotes import check_remote, split_credentials
from racetrack_core.source_hosts import allowed_hosts

#: The fields a deploy request may have (racetrack-client's DeployRequest).
DEPLOY_FIELDS = {
    "manifest",
    "git_credentials",
    "secret_vars",
    "build_context",
    "force",
    "build_flags",
}


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
        """Every secret this request carries, for scrubbing the build log and errors."""
        values = [*self.build_env_secrets.values(), *self.runtime_env_secrets.values()]
        if self.git_credentials:
            values.append(self.git_credentials[1])
        return [value for value in values if value and len(value) >= 3]


def parse_deploy_body(
    body: Mapping[str, Any], caller: Caller, plugins: PluginManager, settings: Settings
) -> DeployRequest:
    """The deploy request in ``body``, by ``caller``; BadRequest (or PayloadTooLarge) names
    the field that is wrong and how to fix it."""
    unknown = sorted(set(body) - DEPLOY_FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r} in the deploy request; expected: "
            + ", ".join(sorted(DEPLOY_FIELDS))
        )
    manifest = body.get("manifest")
    if not isinstance(manifest, dict):
        raise BadRequest("field 'manifest' is required: the job.yaml contents as an object")
    try:
        validated = validate_manifest(
            received_manifest(manifest), plugins, default_target=settings.infrastructure_target
        )
    except ManifestError as exc:
        raise BadRequest(str(exc)) from None
    target = str(validated.data.get("infrastructure_target") or settings.infrastructure_target)
    credentials = body.get("git_credentials")
    git_credentials = None
    if credentials is not None:
        if (
            not isinstance(credentials, Mapping)
            or not {"username", "password"} <= set(credentials)
            or not all(isinstance(credentials[key], str) for key in ("username", "password"))
        ):
            raise BadRequest(
                "field 'git_credentials' must be null or {username, password}, both strings"
            )
        git_credentials = (credentials["username"], credentials["password"])
    try:
        build_secrets, runtime_secrets = secret_vars(body)
    except DeployError as exc:
        raise BadRequest(str(exc)) from None
    context = body.get("build_context")
    if context is not None:
        if not isinstance(context, str):
            raise BadRequest("field 'build_context' must be base64 text of a tar.gz, or null")
        try:
            check_context_size(context, settings.build_context_max_bytes)
        except SourceError as exc:
            raise PayloadTooLarge(str(exc)) from None
    flags = body.get("build_flags") or []
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise BadRequest("field 'build_flags' must be a list of strings, like ['--no-cache']")
    return DeployRequest(
        manifest=validated.data,
        job_type=validated.job_type,
        target=target,
        deployed_by=caller.name,
        warnings=list(validated.warnings),
        git_credentials=git_credentials,
        build_env_secrets=build_secrets,
        runtime_env_secrets=runtime_secrets,
        build_context=context,
        caller=caller,
        no_cache="--no-cache" in flags,
    )


def check_git_host(request: DeployRequest, settings: Settings) -> None:
    """BadRequest when ``request`` would clone a remote that is not a supported git URL or is
    on a host the server does not fetch from. The clone checks the host again when it starts
    (a name's addresses may change meanwhile) and connects only to the addresses it checked.
    """
    if request.build_context is not None or request.source_dir is not None:
        return
    remote = (request.manifest.get("git") or {}).get("remote")
    if not remote:
        return
    remote = split_credentials(str(remote))[0]
    try:
        check_remote(remote)
        check_remote_host(remote, allowed_hosts(settings.source_allowed_hosts))
    except SourceError as exc:
        raise BadRequest(str(exc)) from None


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

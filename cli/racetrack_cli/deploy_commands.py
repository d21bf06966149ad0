"""``racetrack deploy``: validate a job here, send it to Lifecycle, and follow the deployment.

The manifest is read and validated with the same loader as ``racetrack validate``, so that a
mistake is reported before anything is sent; only a job type that this environment lacks (one
installed on the server with ``racetrack plugin install``) is left to the server to check.
The source goes as a *build context* (the job directory packed, honouring ``.gitignore``) when
the remote is on this machine, else the server fetches it from the manifest's git remote with
the credentials saved for it (``racetrack set credentials``); ``--build-context`` chooses
either way.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from racetrack_cli.client import ClientError, Lifecycle, needs_tls, remote_option
from racetrack_cli.config import ClientConfig, is_local
from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import warn
from racetrack_cli.progress import PhaseReporter, same_warning

if TYPE_CHECKING:
    from racetrack_core.errors import ManifestError

#: Exit code of a deployment that the server ran and that failed (1 is any other error).
DEPLOYMENT_FAILED = 3
#: Exit code after Ctrl-C stopped the waiting (the deployment goes on).
INTERRUPTED = 130
BUILD_LOG_TAIL = 20
TIMEOUT_SECONDS = 3600


class DeploymentFailed(click.ClickException):
    """The server ran the deployment and it failed."""

    exit_code = DEPLOYMENT_FAILED


@click.command()
@click.argument(
    "directory",
    metavar="[DIR]",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@remote_option
@click.option("--force", is_flag=True, help="Redeploy a version that is deployed already.")
@click.option(
    "--build-context",
    type=click.Choice(["local", "git"]),
    help="Send DIR's files (local) or let the server fetch git.remote (git) "
    "[default: local for a remote on 127.0.0.1 or localhost, else git].",
)
@click.option(
    "-e",
    "--extra-var",
    "extra_vars",
    multiple=True,
    metavar="KEY.SUB=VALUE",
    help="Override a manifest field (repeatable), like -e version=1.2.3.",
)
@click.option("--no-cache", is_flag=True, help="Build from scratch, reusing nothing cached.")
@click.pass_context
def deploy(
    ctx: click.Context,
    directory: Path | None,
    remote: str | None,
    force: bool,
    build_context: str | None,
    extra_vars: tuple[str, ...],
    no_cache: bool,
) -> None:
    """Deploy the job in DIR (default: the current directory) and wait until it serves.

    Each phase is shown as it happens with the time it took. At the end comes the job's
    address and a racetrack call line to try it. A failed deployment shows its error and the
    end of its build log, and exits with code 3; Ctrl-C stops waiting (exit code 130) but
    not the deployment.
    """
    directory = directory or Path.cwd()
    config = ClientConfig.load()
    lifecycle = Lifecycle.connect(remote, config)
    lifecycle.require_token()

    from racetrack_core.errors import ManifestError
    from racetrack_core.manifest import load_manifest
    from racetrack_core.schema import DEFAULT_VERSION, validate_manifest

    manifest = load_manifest(directory, extra_vars=extra_vars)
    try:
        validated = validate_manifest(manifest, local_plugins(ctx).manager)
    except ManifestError as error:
        job_type = server_only_job_type(error)
        if job_type is None:
            raise
        # A job type installed on the server only (racetrack plugin install): the server
        # validates the manifest against it and answers with its problems.
        warn(f"job type '{job_type}' is not installed here: the server checks the manifest")
        data = dict(manifest.data)
        name, version = str(data.get("name")), str(data.get("version", DEFAULT_VERSION))
        warned: list[str] = []
    else:
        warned = validated.warnings
        for message in warned:
            warn(message)
        data = validated.data
        name, version = validated.name, validated.version
    job_dir = Path(manifest.source).parent if manifest.source else directory

    context_kind = build_context or ("local" if is_local(lifecycle.url) else "git")
    body: dict[str, Any] = {
        # As written (merged, -e applied): the server reads older spellings itself and keeps
        # their warnings with the deployment, as it does for racetrack-client.
        "manifest": manifest.data,
        "git_credentials": None,
        "secret_vars": {
            "build_env": read_env_file(job_dir, data.get("secret_build_env_file")),
            "runtime_env": read_env_file(job_dir, data.get("secret_runtime_env_file")),
        },
        "build_context": None,
        "force": force,
        "build_flags": ["--no-cache"] if no_cache else [],
    }
    if context_kind == "local":
        body["build_context"] = pack(job_dir, data)
    else:
        remote_url = (data.get("git") or {}).get("remote")
        if remote_url:
            body["git_credentials"] = config.find_git_credentials(str(remote_url))

    click.echo(f"deploying {directory} (job {name} v{version}) to {lifecycle.url}", err=True)
    answer = lifecycle.post("/deploy", body, timeout=300)
    deployment_id = str(answer["id"])
    try:
        record = wait(lifecycle, deployment_id, shown=warned)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped waiting; deployment {deployment_id} of job {name} {version} goes on: "
            f"see racetrack list{lifecycle.remote_hint}",
            err=True,
        )
        ctx.exit(INTERRUPTED)
    if record["status"] != "done":
        shown = show_build_log(lifecycle, deployment_id)
        reason = str(record.get("error") or "no reason given").strip()
        first, _, rest = reason.partition("\n")
        if rest.strip():
            first = first.rstrip(":. ") + (" (see the build log above)" if shown else "")
        raise DeploymentFailed(f"deployment of job {name} {version} failed: {first}")
    job = record.get("job") or {}
    pub_url = job.get("pub_url") or ""
    click.echo(f"job {name} {version} is deployed: {pub_url}")
    example = input_example(pub_url, lifecycle.token)
    version_hint = f" --version {version}" if "-" in version else ""
    click.echo(
        f"racetrack call {name} /api/v1/perform {shlex.quote(json.dumps(example))}"
        f"{version_hint}{lifecycle.remote_hint}"
    )


def server_only_job_type(error: ManifestError) -> str | None:
    """The job type of a manifest whose one problem here is that this environment lacks its
    job type, with none installed here that it could be a typo of (None otherwise)."""
    if len(error.problems) != 1:
        return None
    found = re.search(
        r"field 'jobtype' .*unknown job type '([^']+)'\. Installed: ", error.problems[0]
    )
    if found is None or "did you mean" in error.problems[0]:
        return None
    return found.group(1)


def pack(job_dir: Path, manifest: dict[str, Any]) -> str:
    """The job directory as a build context, without the secret env files that ``manifest``
    names (their values travel in ``secret_vars``), or a one-line error."""
    from racetrack_core.source.packing import BuildContextError, pack_build_context
    from racetrack_core.source.secret_files import secret_file_names

    try:
        return pack_build_context(job_dir, exclude=secret_file_names(manifest))
    except BuildContextError as exc:
        raise click.ClickException(str(exc)) from None


def read_env_file(job_dir: Path, name: Any) -> dict[str, str]:
    """``KEY=value`` lines of a secret env file (quotes stripped, ``#`` comments skipped)."""
    if not name:
        return {}
    path = job_dir / str(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the secret env file {path}: {exc.strerror}; create it, or remove "
            "its field from the manifest"
        ) from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise click.ClickException(f"{path} line {number}: expected KEY=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def wait(
    lifecycle: Lifecycle, deployment_id: str, shown: list[str] | None = None
) -> dict[str, Any]:
    """Poll the deployment until it ends, reporting phases and warnings (except those
    ``shown`` already); return its record."""
    reporter = PhaseReporter(live=sys.stderr.isatty())
    reporter.warned.update(same_warning(message) for message in shown or ())
    deadline = time.monotonic() + TIMEOUT_SECONDS
    delay = 0.1
    while True:
        record: dict[str, Any] = lifecycle.get(f"/deploy/{deployment_id}")
        reporter.update(record)
        if record.get("status") != "in_progress":
            reporter.finish(record)
            return record
        if time.monotonic() > deadline:
            reporter.finish(record)
            raise ClientError(
                f"deployment {deployment_id} is still running after {TIMEOUT_SECONDS} s; "
                "stopped waiting"
            )
        reporter.tick(delay)
        delay = min(delay * 1.5, 1.0)


def show_build_log(lifecycle: Lifecycle, deployment_id: str) -> bool:
    """Print the end of a deployment's build log on stderr; say whether there was any."""
    try:
        answer = lifecycle.get(f"/deploy/{deployment_id}/build-logs", tail=BUILD_LOG_TAIL)
    except ClientError:
        return False
    text = answer.get("logs", "") if isinstance(answer, dict) else ""
    if not text.strip():
        return False
    click.echo(f"last lines of the build log (deployment {deployment_id}):", err=True)
    for line in text.rstrip("\n").splitlines():
        click.echo(f"  {line}", err=True)
    return True


def input_example(pub_url: str, token: str | None) -> Any:
    """The example input the job documents for /api/v1/perform, or an empty object."""
    if not pub_url:
        return {}
    import httpx

    headers = {"X-Racetrack-Auth": token} if token else {}
    try:
        answer = httpx.get(
            f"{pub_url.rstrip('/')}/openapi.json",
            headers=headers,
            timeout=5,
            verify=needs_tls(pub_url),
        )
        document = answer.json() if answer.status_code == 200 else {}
        operation = document["paths"]["/api/v1/perform"]["post"]
        return operation["requestBody"]["content"]["application/json"]["example"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}

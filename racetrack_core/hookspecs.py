"""Every hook a Racetrack plugin can implement.

Plugins mark their functions with :data:`racetrack_core.hookimpl` (importable from the
top-level package) and are found through the ``racetrack.plugins`` entry-point group. Hooks are
always called with keyword arguments, so an implementation may accept only the arguments it
needs. A hook that raises is re-raised as :class:`racetrack_core.errors.PluginError` naming the
plugin and the hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from racetrack_core.auth import Caller, RequestLike
    from racetrack_core.baseimages import BaseImageRegistrar
    from racetrack_core.manifest import Problem
    from racetrack_core.registry import InfrastructureRegistrar, JobType, JobTypeRegistrar

PROJECT = "racetrack"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------- registration


@hookspec
def register_job_types(registry: JobTypeRegistrar) -> None:
    """Register the job types this plugin provides.

    Called once, when the plugin manager first builds its job-type registry after loading.
    ``registry.register(name, version, extra_schema=..., description=..., options=...)`` adds
    one version of a job type; the registry rejects a malformed name or version and a
    ``name:version`` that another plugin registered already. ``extra_schema`` is the JSON-schema
    fragment that validates the manifest's ``jobtype_extra`` section. Return nothing.
    """


@hookspec
def register_infrastructure_targets(registry: InfrastructureRegistrar) -> None:
    """Register the infrastructure targets (places where jobs run) this plugin provides.

    Called once, when the plugin manager first builds its target registry after loading.
    ``registry.register(name, driver, description=...)`` adds one target; a duplicate or
    malformed name is rejected. Return nothing.
    """


@hookspec
def register_base_images(registry: BaseImageRegistrar) -> None:
    """Declare the base images this plugin's image recipes build ``FROM``.

    Called each time ``racetrack images bootstrap`` runs (or lists), after loading.
    ``registry.register(name, packages, suite="bookworm")`` says that an image named ``name``
    (the reference the recipe's Dockerfile starts ``FROM``) is a minimal Debian ``suite`` with
    ``packages``; the command builds it with debootstrap and imports it into the Docker engine.
    A malformed name or package, or a name another plugin declared with other packages, is
    rejected. Return nothing. (An image recipe can instead declare its own base image, with a
    ``debian_base`` attribute: see ``racetrack_core.recipes.DebianBase``.)
    """


# ---------------------------------------------------------------- manifest


@hookspec
def manifest_schema_fragments() -> Mapping[str, Mapping[str, Any]] | None:
    """Add top-level fields to the manifest schema.

    Called each time a manifest is validated or the schema is composed. Return a mapping of
    field name to its JSON schema, such as ``{"monitoring": {"type": "object"}}``, or None. A
    field that the core schema or another plugin defines already is rejected.
    """


@hookspec
def validate_manifest(
    manifest: Mapping[str, Any], job_type: JobType, target: str | None
) -> Iterable[Problem] | None:
    """Check a manifest beyond what the JSON schema can say.

    Called after the manifest passed the composed schema, with the merged manifest (a plain
    dict, in current spellings), the job type its ``jobtype`` resolved to, and the name of the
    infrastructure target it goes to (the manifest's own or the server's default; None when
    that is not known, as in ``racetrack validate`` on a client). Every plugin is called, not
    only the job type's own; an implementation may leave out arguments it does not use. Return
    the problems found, as :class:`racetrack_core.manifest.Problem` (field path and sentence;
    ``warning=True`` for a field that is accepted but ignored), or None when there are none.
    """


# ---------------------------------------------------------------- request and auth


@hookspec(firstresult=True)
def authenticate_request(request: RequestLike) -> Caller | None:
    """Say who is making an HTTP request to Lifecycle, Pub or the Dashboard.

    Called for each request that needs a caller, before Racetrack's own token check.
    ``request`` offers ``headers``, ``cookies`` and ``url``. Return a
    :class:`racetrack_core.auth.Caller` to accept the request as that caller, or None to let
    the next plugin (and finally Racetrack's own tokens) decide; the first non-None answer wins.
    Raise :class:`racetrack_core.auth.AuthenticationError` to refuse the request outright.
    """


@hookspec
def api_routes() -> Sequence[Any] | None:
    """Add routes to the Lifecycle API.

    Called once, when the Lifecycle app is built. Return a list of Starlette routes (``Route``,
    ``Mount``), mounted under ``/api/v1/plugins/<plugin name>``, or None. Requests without a
    valid token are refused before they reach the routes; a route that needs more asks
    ``racetrack_core.lifecycle.context.caller_of(request)`` who is calling.
    """


@hookspec
def cli_commands(cli: click.Group) -> None:
    """Add commands to the ``racetrack`` command line.

    Called when the CLI starts, with the top-level ``click`` group. Add commands with
    ``cli.add_command(...)`` or the ``@cli.command()`` decorator; a command whose name is taken
    already is left out with a warning naming the plugin. Return nothing.
    """


# ---------------------------------------------------------------- deployment


@hookspec
def job_runtime_env(manifest: Mapping[str, Any], job_type: JobType) -> Mapping[str, str] | None:
    """Add environment variables to a job when it starts.

    Called on every deployment, before the job starts. Return a mapping of variable name to
    value, or None. When two plugins set one variable, the one called first wins (a
    ``trylast`` plugin only provides a default); the manifest's own ``runtime_env`` and
    its secrets override every plugin; names that Racetrack reserves (``PUB_URL``, ``JOB_NAME``
    and so on) are rejected.
    """


@hookspec
def after_job_deploy(
    job: Mapping[str, Any], manifest: Mapping[str, Any], deployed_by: str | None
) -> None:
    """React to a job that has just been deployed and is ready to serve.

    Called once per successful deployment, after traffic has switched to it, with the job's
    record (``name``, ``version``, ``status``, ``pub_url``, ...), its manifest and the username
    that deployed it. An exception here does not fail the deployment: it becomes a warning on
    it. Return nothing.
    """


@hookspec
def after_job_delete(job: Mapping[str, Any], deleted_by: str | None) -> None:
    """React to a job that has just been deleted.

    Called once per deleted job version, after it stopped, with its last record and the
    username that deleted it. An exception here is logged and does not undo the delete.
    Return nothing.
    """

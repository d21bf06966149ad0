"""What the Lifecycle API's routes answer, as types: the routes build their answers with them
(mypy checks each key) and the OpenAPI document describes them from the same classes
(``racetrack_core.lifecycle.json_schemas``), closed, so that an answer holding a key its type
does not name breaks its schema. Times are unix seconds.

No record holds a secret. A token appears only where it is handed out: once when it is made
(:class:`NewToken`, :class:`Regenerated`), and in :class:`Session`, which gives back the token
the caller logged in with or sent. Tokens are otherwise shown by their ``hint``.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from racetrack_core.access import Scope, SubjectKind
from racetrack_core.wire import DeploymentStatus, JobStatus

#: Keys documented by the string under them.
DOCUMENTED = ConfigDict(use_attribute_docstrings=True)


class Info(TypedDict):
    """What a client learns before it logs in."""

    service: str
    version: str
    git_version: str
    docker_tag: None
    auth_required: bool
    external_pub_url: str
    lifecycle_url: str
    infrastructure_targets: list[str]
    default_infrastructure_target: str


@with_config(DOCUMENTED)
class Session(TypedDict):
    """Who holds a token, with the token itself (the caller's own)."""

    username: str
    token: str | None
    is_staff: bool
    kind: NotRequired[str]
    """user, esc, job_family or internal (``validate_user_auth`` only)"""


class UserRecord(TypedDict):
    """A user account (never its password hash)."""

    id: str
    username: str
    is_active: bool
    is_staff: bool
    create_time: int
    last_login_time: int | None


class Instance(TypedDict):
    """One instance of a job's replica, as the watcher last saw it."""

    url: str
    name: str | None
    status: str
    error: str | None
    restarts: int | None


@with_config(DOCUMENTED)
class JobRecord(TypedDict):
    """A job version: racetrack-client's JobDto plus ``owner_email``, ``instances`` and
    ``deployment_timestamp``."""

    id: str
    name: str
    version: str
    status: JobStatus
    create_time: int
    update_time: int
    manifest: NotRequired[Any]
    """the manifest as data (left out with ``?manifest=false``)"""
    manifest_yaml: NotRequired[str]
    """the manifest as text (left out with ``?manifest=false``)"""
    owner_email: str | None
    internal_name: str | None
    pub_url: str
    error: str | None
    notice: str | None
    image_tag: None
    deployed_by: str | None
    last_call_time: int | None
    infrastructure_target: str
    replica_internal_names: list[str]
    instances: list[Instance]
    job_type_version: str
    deployment_timestamp: int
    infrastructure_stats: dict[str, Any]


class PhaseTime(TypedDict):
    phase: str
    time: float


@with_config(DOCUMENTED)
class DeploymentRecord(TypedDict):
    """A deployment: racetrack-client's DeploymentDto plus ``phases`` and ``finish_time``."""

    id: str
    status: DeploymentStatus
    phase: str | None
    phases: list[PhaseTime]
    create_time: int
    update_time: int
    finish_time: int | None
    error: str | None
    warnings: str | None
    """the manifest's warnings, one a line"""
    job: JobRecord | None
    """the job, once the deployment is done (``GET /deploy/{id}`` only)"""
    job_name: str
    job_version: str
    deployed_by: str | None
    infrastructure_target: str | None
    job_type_version: str | None
    manifest_yaml: str
    image_name: None


class DeploymentStarted(TypedDict):
    id: str


class Logs(TypedDict):
    logs: str


class FamilyRecord(TypedDict):
    id: str
    name: str


class FamilyJobs(TypedDict):
    name: str
    jobs: list[JobRecord]


class FamilyPage(TypedDict):
    """One page of job families, each with its versions (records without the manifest)."""

    families: list[FamilyJobs]
    total: int
    matching: int
    matching_families: int
    page: int
    pages: int
    per_page: int


class CallPermission(TypedDict):
    """Pub's answer: the resolved job, who calls it (null for an open path), and whether the
    job's ``/docs`` is Racetrack's own Swagger page (its job type's ``docs_page``)."""

    job: JobRecord
    caller: str | None
    docs_page: bool


class TargetRecord(TypedDict):
    name: str
    plugin: str
    description: str


class PluginChange(TypedDict):
    """What an install or uninstall did."""

    plugins: list[dict[str, Any]]
    distributions: dict[str, str]
    jobs_stopped: list[str]


class TokenRecord(TypedDict):
    """A token, shown by the last characters of it (``hint``), never whole."""

    id: str
    hint: str
    create_time: int
    expiry_time: int | None
    revoked: bool
    revoke_time: int | None
    active: bool
    last_use_time: int | None


class NewToken(TokenRecord):
    """A token just made: the only answer that holds it whole."""

    token: str


class Regenerated(TypedDict):
    new_token: str


@with_config(DOCUMENTED)
class ConsumerRecord(TypedDict):
    """An external service consumer (ESC)."""

    id: str
    name: str
    create_time: int
    created_by: str | None
    tokens: NotRequired[list[TokenRecord]]
    """its tokens (``GET /escs?tokens=true`` and ``GET /escs/{id}/auth_data``)"""


class GrantRecord(TypedDict):
    """A scope granted to a subject on every job, a family, a version or an endpoint."""

    id: str
    subject_kind: SubjectKind
    subject_name: str
    subject: str
    scope: Scope
    job_family: str | None
    job_version: str | None
    endpoint: str | None
    create_time: int
    granted_by: str | None


class EventRecord(TypedDict):
    """One audit event."""

    id: str
    time: int
    kind: str
    actor: str | None
    job_name: str | None
    job_version: str | None
    subject: str | None
    details: Any
    explanation: str


class Activity(TypedDict):
    filter_job_name: str | None
    filter_job_version: str | None
    filter_related_to_me: bool
    events: list[EventRecord]


class PublicEndpointRecord(TypedDict):
    id: str
    job_name: str
    job_version: str
    endpoint: str
    active: bool
    create_time: int
    approved_by: str | None
    approved_at: int | None


class AsyncTask(TypedDict):
    """An asynchronous call as Pub stores it; bodies in base64."""

    id: str
    job_name: str
    job_version: str
    method: str
    path: str
    query: str
    request_headers: list[list[str]]
    caller: str | None
    status: str
    attempts: int
    response_status: int | None
    response_headers: list[list[str]] | None
    error: str | None
    created_at: float
    updated_at: float
    expires_at: float
    request_body: NotRequired[str]
    response_body: NotRequired[str | None]


class Deleted(TypedDict):
    deleted: int


class Updated(TypedDict):
    updated: int

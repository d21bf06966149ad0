"""Table models. Times are unix seconds (floats), as on the wire; ids are random hex strings.

Secrets are never stored in plain text: passwords as argon2 hashes, tokens as SHA-256 digests
(a token is 32 random bytes, so a fast digest cannot be brute-forced), and deployment secrets
encrypted before they reach a row.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Re-exported: the enums are the API's words too, defined where clients may import them.
from racetrack_core.access import Scope as Scope
from racetrack_core.access import SubjectKind as SubjectKind
from racetrack_core.wire import DeploymentStatus as DeploymentStatus
from racetrack_core.wire import JobStatus as JobStatus


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class JobFamily(SQLModel, table=True):
    """All versions of one job name; the subject that job-to-job calls authenticate as."""

    __tablename__ = "job_family"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(unique=True, index=True, max_length=64)
    created_at: float = Field(default_factory=now)


class Job(SQLModel, table=True):
    """One deployed version of a job family."""

    __tablename__ = "job"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_job_name_version"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    family_id: str = Field(foreign_key="job_family.id", index=True, max_length=32)
    name: str = Field(index=True, max_length=64)
    version: str = Field(max_length=128)
    status: str = Field(default=JobStatus.STARTING, max_length=16)
    manifest_yaml: str = Field(sa_type=Text)
    job_type: str = Field(max_length=128)
    infrastructure_target: str = Field(max_length=64)
    internal_name: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_type=Text)
    notice: str | None = Field(default=None, sa_type=Text)
    deployed_by: str | None = Field(default=None, max_length=255)
    deployment_timestamp: int = 0
    deployment_id: str | None = Field(default=None, max_length=32)
    #: The job's own folder inside the fetched source, which the running replica serves.
    workspace: str | None = Field(default=None, sa_type=Text)
    #: The serving replica as JSON ({id, url, ...}), as the infrastructure driver reported it.
    replica: str | None = Field(default=None, sa_type=Text)
    #: Each instance's state as the watcher last saw it, as JSON [{url, status, error}, ...].
    instances: str | None = Field(default=None, sa_type=Text)
    #: Runtime secrets and the family token, sealed (racetrack_core.security.SecretBox).
    sealed_secrets: str | None = Field(default=None, sa_type=Text)
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    last_call_at: float | None = None


class Deployment(SQLModel, table=True):
    """One attempt to deploy a manifest, with its phases, outcome and build log."""

    __tablename__ = "deployment"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    job_name: str = Field(index=True, max_length=64)
    job_version: str = Field(max_length=128)
    status: str = Field(default=DeploymentStatus.IN_PROGRESS, index=True, max_length=16)
    phase: str | None = Field(default=None, max_length=128)
    #: Every phase reached so far as JSON [[phase, unix time], ...], so clients can show timing.
    phases: str = Field(default="[]", sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    warnings: str = Field(default="[]", sa_type=Text)
    build_log: str = Field(default="", sa_type=Text)
    manifest_yaml: str = Field(sa_type=Text)
    infrastructure_target: str | None = Field(default=None, max_length=64)
    job_type: str | None = Field(default=None, max_length=128)
    deployed_by: str | None = Field(default=None, max_length=255)
    job_id: str | None = Field(default=None, foreign_key="job.id", max_length=32)
    created_at: float = Field(default_factory=now, index=True)
    updated_at: float = Field(default_factory=now)
    finished_at: float | None = None
    #: The Lifecycle process running it, and until when its lease holds unless renewed
    #: (``racetrack_core.lifecycle.leases``); an expired lease means that process is gone.
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_expires_at: float | None = Field(default=None, index=True)
    #: The replica it has started and not yet handed to the job record (the watcher leaves it be).
    replica_id: str | None = Field(default=None, max_length=128)


class User(SQLModel, table=True):
    """A person: inactive until a staff member activates the account."""

    __tablename__ = "user_account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    username: str = Field(unique=True, index=True, max_length=255)
    password_hash: str = Field(max_length=255)
    is_active: bool = False
    is_staff: bool = False
    created_at: float = Field(default_factory=now)
    last_login_at: float | None = None


class AuthToken(SQLModel, table=True):
    """A revocable token of a user, an external service consumer or a job family."""

    __tablename__ = "auth_token"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    subject_kind: str = Field(max_length=16, index=True)
    subject_name: str = Field(max_length=255, index=True)
    token_digest: str = Field(unique=True, max_length=64)
    hint: str = Field(max_length=16)
    created_at: float = Field(default_factory=now)
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


class ExternalConsumer(SQLModel, table=True):
    """An external service consumer (ESC): a program that calls jobs with its own tokens."""

    __tablename__ = "external_consumer"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(unique=True, index=True, max_length=128)
    created_at: float = Field(default_factory=now)
    created_by: str | None = Field(default=None, max_length=255)


class Permission(SQLModel, table=True):
    """A grant: a subject may use a scope on all jobs, one family, one version or one endpoint.

    An empty ``job_family`` means every job; an empty ``job_version`` every version of the
    family; an empty ``endpoint`` every path. Grants only allow; there are no deny rows.
    """

    __tablename__ = "permission"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    subject_kind: str = Field(max_length=16, index=True)
    subject_name: str = Field(max_length=255, index=True)
    scope: str = Field(max_length=32)
    job_family: str | None = Field(default=None, max_length=64)
    job_version: str | None = Field(default=None, max_length=128)
    endpoint: str | None = Field(default=None, max_length=512)
    created_at: float = Field(default_factory=now)
    granted_by: str | None = Field(default=None, max_length=255)


class AuditEvent(SQLModel, table=True):
    """Who did what, when: deploys, deletes, grants, activations, tokens, plugins."""

    __tablename__ = "audit_event"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    time: float = Field(default_factory=now, index=True)
    kind: str = Field(max_length=64, index=True)
    actor: str | None = Field(default=None, max_length=255, index=True)
    job_name: str | None = Field(default=None, max_length=64, index=True)
    job_version: str | None = Field(default=None, max_length=128)
    subject: str | None = Field(default=None, max_length=255)
    details: str = Field(default="{}", sa_type=Text)


class PublicEndpointRequest(SQLModel, table=True):
    """A path prefix of a job version that its manifest asks to open to calls without a token;
    it works only once a staff member approves it."""

    __tablename__ = "public_endpoint_request"
    __table_args__ = (
        UniqueConstraint("job_name", "job_version", "endpoint", name="uq_public_endpoint"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    job_name: str = Field(max_length=64, index=True)
    job_version: str = Field(max_length=128)
    endpoint: str = Field(max_length=512)
    active: bool = False
    created_at: float = Field(default_factory=now)
    approved_by: str | None = Field(default=None, max_length=255)
    approved_at: float | None = None


class AsyncJobCall(SQLModel, table=True):
    """A call that Pub runs in the background and keeps until the caller collects its answer."""

    __tablename__ = "async_job_call"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    job_name: str = Field(max_length=64, index=True)
    job_version: str = Field(max_length=128)
    method: str = Field(max_length=16)
    path: str = Field(sa_type=Text)
    query: str = Field(default="", sa_type=Text)
    request_headers: str = Field(default="[]", sa_type=Text)
    request_body: bytes = Field(default=b"", sa_type=LargeBinary)
    caller: str | None = Field(default=None, max_length=255)
    status: str = Field(default="ongoing", max_length=16, index=True)
    attempts: int = 0
    response_status: int | None = None
    response_headers: str | None = Field(default=None, sa_type=Text)
    response_body: bytes | None = Field(default=None, sa_type=LargeBinary)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: float = Field(default_factory=now, index=True)
    updated_at: float = Field(default_factory=now)
    expires_at: float = Field(index=True)


class ReplicaPort(SQLModel, table=True):
    """A port on one host that a replica of a job holds, claimed before the replica starts.

    Every Lifecycle process shares this record, so two of them never hand out one port, and
    which replica of which deployment holds a port is known from the database alone.
    """

    __tablename__ = "replica_port"
    __table_args__ = (UniqueConstraint("target", "host", "port", name="uq_replica_port"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    target: str = Field(max_length=64)
    host: str = Field(max_length=255)
    port: int
    replica_id: str = Field(max_length=128, index=True)
    job_name: str = Field(max_length=64)
    job_version: str = Field(max_length=128)
    deployment_id: str = Field(max_length=64)
    created_at: float = Field(default_factory=now)


class InstalledPlugin(SQLModel, table=True):
    """A plugin distribution installed through Lifecycle, which every Lifecycle process installs
    at start; an uninstalled one keeps its row, with ``uninstalled_at``, so that every process
    removes it too."""

    __tablename__ = "installed_plugin"

    #: The distribution's normalized name (PEP 503).
    distribution: str = Field(primary_key=True, max_length=128)
    version: str = Field(max_length=64)
    #: ``wheel`` (uploaded, kept in ``wheel``), ``index`` (a requirement) or ``git`` (a URL).
    kind: str = Field(max_length=16)
    #: The source as given, credentials masked: what answers and the audit log show.
    source_shown: str = Field(sa_type=Text)
    #: The source as given, sealed (racetrack_core.security.SecretBox): a URL may hold a password.
    source_sealed: str | None = Field(default=None, sa_type=Text)
    wheel_name: str | None = Field(default=None, max_length=255)
    wheel: bytes | None = Field(default=None, sa_type=LargeBinary)
    installed_by: str | None = Field(default=None, max_length=255)
    installed_at: float = Field(default_factory=now)
    uninstalled_at: float | None = None


class Lease(SQLModel, table=True):
    """A named role that one Lifecycle process holds at a time (the job watcher's), until
    ``expires_at`` unless its holder renews it."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=64)
    expires_at: float


class LoginFailure(SQLModel, table=True):
    """One failed login, counted against an account (``user:NAME``) or an address
    (``addr:IP``) by every Lifecycle process."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=320, index=True)
    at: float = Field(index=True)

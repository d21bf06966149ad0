"""What the Lifecycle API's routes take: JSON bodies and query parameters, as types.

A body's type is both what the OpenAPI document shows and what ``read_json_object`` checks
(``racetrack_core.lifecycle.json_schemas``): a request that breaks it is a 400 naming the
field. Checks that need the database or the plugins (does the user exist, is the target
installed) stay in the routes. A body that racetrack-client 2.35.1 sends is accepted as it
sends it: ``git_credentials`` and ``build_context`` may be null, ``secret_vars`` may leave out
either mapping. Bodies marked ``extra="forbid"`` refuse fields they do not name, as the routes
did before these types existed; the others ignore them.

A query type lists a route's query parameters, all optional; the route reads and checks them
itself, and ``tests/security/test_fuzz_lifecycle_api.py`` sends what the document allows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from racetrack_core.access import Scope, SubjectKind
from racetrack_core.lifecycle.json_schemas import REFUSALS
from racetrack_core.wire import MIN_PASSWORD_LENGTH, JobStatus

#: Fields a body refuses when it does not name them.
CLOSED = ConfigDict(extra="forbid", use_attribute_docstrings=True)
OPEN = ConfigDict(use_attribute_docstrings=True)

Text = Annotated[str, Field(min_length=1)]
Days = Annotated[float, Field(gt=0, le=3650)]


@with_config(OPEN)
class Credentials(TypedDict):
    """A username (an e-mail address to register) and a password."""

    username: Text
    password: Text


#: What the route takes as an e-mail address (``accounts.USERNAME_PATTERN``), spelled so that
#: ECMA-262 and Python read it alike: ``\s`` is not the same set in both, so the characters
#: only Python counts as space are named too.
NO_SPACE = r"@\s\x1c-\x1f\x85"
EMAIL = rf"^[^{NO_SPACE}]+@[^{NO_SPACE}]+\.[^{NO_SPACE}.]+$"


MAX_PASSWORD_LENGTH = 1024
#: Registration's own sentences for the rules its fields break (``json_schemas.REFUSALS``).
NOT_AN_EMAIL = (
    "is not an e-mail address; register with your e-mail address, such as jane@example.com"
)
AN_EMAIL: dict[str, Any] = {REFUSALS: dict.fromkeys(("pattern", "maxLength"), NOT_AN_EMAIL)}
PASSWORD_RULES: dict[str, Any] = {
    REFUSALS: {
        "minLength": f"is too short: use at least {MIN_PASSWORD_LENGTH} characters",
        "maxLength": f"is too long: use at most {MAX_PASSWORD_LENGTH} characters",
        "pattern": "is all digits: mix in letters or other characters",
    }
}


@with_config(OPEN)
class Registration(TypedDict):
    """A new account: an e-mail address, and a password of 8 characters or more, not all
    digits (nor one of the most common passwords, nor the username: checked by the route)."""

    username: Annotated[str, Field(max_length=255, pattern=EMAIL, json_schema_extra=AN_EMAIL)]
    password: Annotated[
        str,
        Field(
            min_length=MIN_PASSWORD_LENGTH,
            max_length=MAX_PASSWORD_LENGTH,
            pattern=r"[^0-9]",
            json_schema_extra=PASSWORD_RULES,
        ),
    ]


@with_config(OPEN)
class PasswordChange(TypedDict):
    old_password: Text
    new_password: Text


@with_config(OPEN)
class StaffChange(TypedDict):
    is_staff: bool


@with_config(OPEN)
class GitCredentials(TypedDict):
    """For a private git repository; kept in memory only, masked in every message."""

    username: str
    password: str


@with_config(OPEN)
class SecretVars(TypedDict, total=False):
    """Secret values by variable name, for the build and for the running job."""

    build_env: dict[str, Any] | None
    runtime_env: dict[str, Any] | None


@with_config(CLOSED)
class DeployBody(TypedDict, total=False):
    """A deployment request, as racetrack-client sends it."""

    manifest: Required[dict[str, Any]]
    """the job.yaml contents, merged (``extends`` resolved by the client: null or absent)"""
    git_credentials: GitCredentials | None
    secret_vars: SecretVars | None
    build_context: str | None
    """the job's folder as a base64 tar.gz, instead of fetching it from git"""
    force: bool | None
    """deploy over a version that exists"""
    build_flags: list[str] | None
    """``--no-cache`` builds without the build cache"""


@with_config(OPEN)
class MoveBody(TypedDict):
    infrastructure_target: Text


@with_config(OPEN)
class TokenBody(TypedDict, total=False):
    expires_in_days: Days | None
    """days until the token expires (null: never)"""


@with_config(OPEN)
class ConsumerBody(TypedDict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


@with_config(OPEN)
class ConsumerTokenBody(TypedDict, total=False):
    expires_in_days: Days | None
    expiry_time: float | None
    """when the token expires, unix seconds in the future (null: never); wins over
    ``expires_in_days``"""


@with_config(OPEN)
class GrantBody(TypedDict, total=False):
    """A scope for a subject: on every job, or a family, a version of it, or the endpoints
    under a path of it."""

    subject_kind: Required[SubjectKind]
    subject_name: Required[Text]
    scope: Required[Scope]
    job_family: str | None
    job_version: str | None
    endpoint: str | None


@with_config(OPEN)
class PluginSourceBody(TypedDict, total=False):
    source: Required[Annotated[str, Field(pattern=r"\S")]]
    """a requirement (``racetrack-hello-jobtype==0.1.0``) or a git URL (``git+https://...``)"""
    force: bool | str | None


#: Standard base64 with its padding, in groups of four, as ``b64decode(validate=True)`` takes it.
Base64 = Annotated[
    str, Field(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
]
HeaderPairs = list[Annotated[list[str], Field(min_length=2, max_length=2)]]
TaskKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,32}$")]
#: A count a database column holds (a 32-bit integer in PostgreSQL).
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]


@with_config(CLOSED)
class NewTask(TypedDict, total=False):
    """An asynchronous call that Pub accepted."""

    id: Required[TaskKey]
    job_name: Required[Annotated[str, Field(min_length=1, max_length=64)]]
    job_version: Required[Annotated[str, Field(min_length=1, max_length=128)]]
    method: Required[Annotated[str, Field(min_length=1, max_length=16)]]
    path: Annotated[str, Field(max_length=8192)]
    query: Annotated[str, Field(max_length=8192)]
    request_headers: HeaderPairs | None
    request_body: Base64 | None
    caller: Annotated[str, Field(max_length=255)] | None
    lifetime: Annotated[float, Field(gt=0)]


@with_config(CLOSED)
class TaskUpdate(TypedDict, total=False):
    """An attempt, a heartbeat or the end of an asynchronous call."""

    status: Literal["ongoing", "completed", "failed"] | None
    attempts: Count | None
    response_status: Annotated[int, Field(ge=100, le=599)] | None
    response_headers: HeaderPairs | None
    response_body: Base64 | None
    error: Annotated[str, Field(min_length=1, max_length=4000)] | None
    if_attempts: Count | None
    """change the task only if it has had this many attempts"""


@with_config(CLOSED)
class CallTime(TypedDict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(min_length=1, max_length=128)]
    last_call_time: Annotated[float, Field(gt=0)]


@with_config(CLOSED)
class CallTimes(TypedDict):
    """When job versions were last called, as Pub saw it."""

    calls: Annotated[list[CallTime], Field(max_length=1000)]


# Query parameters -------------------------------------------------------------------------

TrueFalse = Literal["true", "false"]


class TailQuery(TypedDict, total=False):
    tail: int
    """the last N lines (0 or less: all)"""


class DeploymentsQuery(TypedDict, total=False):
    limit: int
    job_name: Text
    job_version: Text


class JobsQuery(TypedDict, total=False):
    manifest: TrueFalse


class FamilyPageQuery(TypedDict, total=False):
    q: str
    status: Literal[""] | JobStatus
    sort: Literal["updated", "name", "status"]
    page: Annotated[int, Field(ge=1, le=10**9)]
    per_page: Annotated[int, Field(ge=1, le=500)]


class ForceQuery(TypedDict, total=False):
    force: str
    """1, true or yes: go on even if deployed jobs use the plugin's job types"""


class ConsumersQuery(TypedDict, total=False):
    tokens: TrueFalse


class GrantsQuery(TypedDict, total=False):
    subject_kind: str
    subject_name: str
    job_family: str


class ActivityQuery(TypedDict, total=False):
    job_name: str
    job_version: str
    related_to_me: str
    limit: Annotated[int, Field(ge=1, le=1000)]


class PublicEndpointsQuery(TypedDict, total=False):
    pending: TrueFalse
    job_name: str


class TasksQuery(TypedDict, total=False):
    status: Literal["ongoing", "completed", "failed"]
    idle_for: float


class ScopePath(TypedDict):
    """The path parameter of the original's ``/auth/allow/.../scope/{scope}`` routes."""

    scope: Scope

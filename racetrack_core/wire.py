"""Names and limits of Lifecycle's API that its clients (the CLI, Pub, the Dashboard) share.

Kept apart from Lifecycle's own modules so that a client can read them without importing the
server: the Dashboard, for one, talks to Lifecycle only over HTTP. This module imports nothing
of Racetrack.
"""

from __future__ import annotations

from enum import StrEnum

AUTH_HEADER = "X-Racetrack-Auth"
"""The header that carries a Racetrack token (a user's, a consumer's or a job family's)."""

CLIENT_ADDRESS_HEADER = "X-Racetrack-Client-Address"
"""The address of the person behind a service's request (the Dashboard's login, for one)."""

SERVICE_TOKEN_HEADER = "X-Racetrack-Service-Token"  # noqa: S105 (a header name)
"""The header that proves a request comes from one of Racetrack's own services."""

MIN_PASSWORD_LENGTH = 8
"""The shortest password Lifecycle accepts."""

MAX_WHEEL_BYTES = 50 * 1024 * 1024
"""The largest plugin wheel Lifecycle accepts for upload."""


class JobStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    ERROR = "error"
    LOST = "lost"


class DeploymentStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"

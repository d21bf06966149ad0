"""Names and labels of a job version's Kubernetes objects.

Every object of a job version shares one name, ``job-<name>-<version>`` made DNS-safe (a
Service name is a DNS-1035 label: lower-case letters, digits and hyphens, starting with a
letter, at most 63 characters; a shorter cap keeps room for the pod-name suffixes a
Deployment adds). The exact name and version, which labels cannot always hold (``+`` is not
allowed in a label value), are kept in annotations.

Labels select; annotations describe:

- ``racetrack.io/owner``, ``racetrack.io/job``, ``racetrack.io/version``: the selector of a job
  version's pods and what the target lists its objects by;
- ``racetrack.io/deployment``: on pods and Secrets, the deployment that made them;
- ``app.kubernetes.io/*``: the conventional labels, for people and tools.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "racetrack.io/"
LABEL_OWNER = PREFIX + "owner"
LABEL_JOB = PREFIX + "job"
LABEL_VERSION = PREFIX + "version"
LABEL_DEPLOYMENT = PREFIX + "deployment"
ANNOTATION_JOB = PREFIX + "job-name"
ANNOTATION_VERSION = PREFIX + "job-version"
ANNOTATION_DEPLOYMENT = PREFIX + "deployment-id"
ANNOTATION_TIMESTAMP = PREFIX + "deployment-timestamp"
ANNOTATION_REPLICA = PREFIX + "replica-id"
ANNOTATION_SECRET = PREFIX + "secret"
#: Where a redeploy keeps the pod template it replaced, so that a failed one can be undone.
ANNOTATION_PREVIOUS = PREFIX + "previous-template"
MANAGED_BY = "racetrack"
APP_NAME = "racetrack-job"

#: Longest object name: a Deployment's pods add ``-<10 chars>-<5 chars>`` to it.
MAX_NAME = 47
_UNSAFE = re.compile(r"[^a-z0-9-]+")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def object_name(name: str, version: str) -> str:
    """The name of every object of a job version.

    A plain ``x.y.z`` version of a DNS-safe name reads as is (``job-primer-1-2-3``: the last
    three parts are the version, so two jobs never share a name); any other version, or a name
    too long, gets a digest of the exact pair so that ``1.0.0-a.b`` and ``1.0.0-a-b`` differ.
    """
    readable = re.sub("-{2,}", "-", _UNSAFE.sub("-", f"job-{name}-{version}".lower()))
    readable = readable.strip("-")
    plain = re.fullmatch(r"[a-z0-9-]+", name) and re.fullmatch(r"\d+\.\d+\.\d+", version)
    if plain and len(readable) <= MAX_NAME:
        return readable
    digest = hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:8]
    return f"{readable[: MAX_NAME - 9].rstrip('-')}-{digest}"


def secret_name(name: str, version: str, deployment_id: str) -> str:
    """The Secret of one deployment's runtime environment (a new one per deployment, so a
    rollback finds the environment it had)."""
    return f"{object_name(name, version)}-{deployment_id[:12].lower()}"


def label_value(text: str) -> str:
    """``text`` as a valid label value (at most 63 characters, alphanumeric at both ends)."""
    value = _LABEL_UNSAFE.sub("_", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def selector(owner: str, name: str, version: str) -> dict[str, str]:
    """The labels that select a job version's pods (and find its objects)."""
    return {
        LABEL_OWNER: label_value(owner),
        LABEL_JOB: label_value(name),
        LABEL_VERSION: label_value(version),
    }


def labels(owner: str, name: str, version: str) -> dict[str, str]:
    """Every label of a job version's objects: the selector and the conventional ones."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": object_name(name, version),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **selector(owner, name, version),
    }


def replica_id(name: str, version: str, deployment_id: str) -> str:
    """The id of the replica one deployment of a job version runs (its rollout)."""
    return f"{object_name(name, version)}@{deployment_id}"

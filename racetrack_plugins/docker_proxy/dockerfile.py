"""The job's own Dockerfile, fitted for Racetrack: ``FROM`` images rewritten, the proxy added.

``fit(text, base_image, builder, port)`` returns the Dockerfile that the image builder runs:

- every ``FROM`` that names an image (not an earlier stage, not ``scratch``) goes through the
  site's base-image map (``BuildSettings.base_images``), so that ``FROM python:3.11-slim``
  builds where only a mirror or a local image of that name exists;
- the last stage gets a name (``racetrack-job``) when it has none;
- two stages follow: one builds the proxy (``proxy/``, Go standard library only) in the Go
  builder image, the last copies it into the job's image as ``/racetrack/proxy`` and labels
  the image so that a container target starts the image's own command through it (Docker), or
  runs it beside that command as a second container of the pod (Kubernetes).

Lines are only ever changed in place, so the line numbers of a failing step in the build log
are the author's.
"""

from __future__ import annotations

import re

from racetrack_core.images import LABEL_NETWORK_WRAPPER as WRAPPER_LABEL
from racetrack_core.images import LABEL_POD_PROXY
from racetrack_core.infrastructure import DeployError

#: Where the proxy sits in the job's image (the value of the network-wrapper label).
WRAPPER_PATH = "/racetrack/proxy"
#: The proxy's argument to serve beside the job's server in a pod (a Kubernetes target's).
POD_MODE = "-racetrack-pod"
PROXY_DIR = ".racetrack-proxy"
JOB_STAGE = "racetrack-job"
_FROM = re.compile(
    r"^(?P<lead>\s*FROM\s+(?:--\S+\s+)*)(?P<image>\S+)(?P<rest>(?:\s+AS\s+(?P<name>\S+))?\s*)$",
    re.IGNORECASE,
)


def fit(text: str, rewrite: dict[str, str], builder: str, port: int) -> str:
    """The author's Dockerfile ``text`` with its images rewritten and the proxy added.

    DeployError, naming the line, for a Dockerfile that has no ``FROM`` or a ``FROM`` that
    Racetrack cannot read.
    """
    lines = text.splitlines()
    stages: set[str] = set()
    last: tuple[int, str | None] | None = None
    for number, line in enumerate(lines):
        if not re.match(r"\s*FROM\s", line, re.IGNORECASE):
            continue
        found = _FROM.match(line)
        if found is None or line.rstrip().endswith("\\"):
            raise DeployError(
                f"Dockerfile line {number + 1}: Racetrack reads 'FROM image [AS name]' on one "
                f"line; found {line.strip()!r}"
            )
        image, name = found["image"], found["name"]
        if image.lower() not in stages and "$" not in image:
            image = rewrite.get(image, image)
        lines[number] = found["lead"] + image + found["rest"]
        if name:
            stages.add(name.lower())
        last = (number, name)
    if last is None:
        raise DeployError("the job's Dockerfile has no FROM line; start it with FROM <image>")
    number, name = last
    if name is None:
        lines[number] = lines[number].rstrip() + f" AS {JOB_STAGE}"
        name = JOB_STAGE
    return "\n".join(lines) + "\n" + _added_stages(builder, name, port)


def _labels() -> str:
    """The job image's labels: which wrapper starts it (Docker), which command serves beside
    it in a pod (Kubernetes)."""
    return (
        f'racetrack-component="job" {WRAPPER_LABEL}="{WRAPPER_PATH}" '
        f'{LABEL_POD_PROXY}="{WRAPPER_PATH} {POD_MODE}"'
    )


def _added_stages(builder: str, job_stage: str, port: int) -> str:
    return f"""
# Added by Racetrack (the docker-proxy job type): the proxy that serves the runtime contract
# and starts this image's own command in a private network namespace.
FROM {builder} AS racetrack-proxy-build
ENV GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS= GOPROXY=off GOSUMDB=off \\
    GOCACHE=/root/.cache/go-build
COPY {PROXY_DIR}/ /src/
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/go-build \\
    go build -trimpath -ldflags='-s -w' -o /out/proxy .

FROM {job_stage}
COPY --from=racetrack-proxy-build /out/proxy {WRAPPER_PATH}
ENV JOB_USER_MODULE_PORT={port}
LABEL {_labels()}
"""

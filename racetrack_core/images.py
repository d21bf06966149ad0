"""The one image builder: a job type's image recipe, rendered and built with BuildKit.

Container targets (Docker now, Kubernetes later) call ``ImageBuilder.build(spec, log)``:

1. the job type's ``ImageRecipe`` renders the build context into a fresh folder, and writes
   build-only secrets into a private folder beside it (never inside the context);
2. ``DOCKER_BUILDKIT=1 <docker CLI> build`` builds it: the docker SDK drives only the legacy
   builder, which has neither secret nor cache mounts. Secrets go as ``--secret id=,src=``
   (never ``--build-arg``), so no layer, history entry or config keeps them;
3. every output line goes to the deployment's build log as it comes; the layer cache is kept
   between builds (``--no-cache`` when the deployer asks); the image is labelled with the job,
   its version and the deployment, so that targets find their images again.

Both folders are removed when the build ends, whatever its outcome. A build that fills the
engine's disk also removes the copies of build contexts that BuildKit keeps (the failed one's
among them), which would otherwise keep the disk full for every later build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racetrack_core.buildsteps import run_logged
from racetrack_core.errors import RacetrackError
from racetrack_core.infrastructure import BuildLog, DeployError, JobSpec
from racetrack_core.recipes import BuildSettings, ImageContext

#: How a build that ran out of disk space says so (lower-cased).
NO_SPACE = "no space left on device"

#: Labels every job image and container carries.
LABEL_JOB = "racetrack.job"
LABEL_VERSION = "racetrack.version"
LABEL_DEPLOYMENT = "racetrack.deployment"
#: Orders a job version's images: BuildKit keeps an image's creation time from its cached
#: layers, so images built from the same layers all carry the same one.
LABEL_TIMESTAMP = "racetrack.deployment-timestamp"
#: An image whose server must be started through a program of its own (the docker-proxy job
#: type's proxy) carries that program's path under this label; a target that cannot start it
#: so refuses the image.
LABEL_NETWORK_WRAPPER = "racetrack.network-wrapper"
#: A wrapped image that can also serve from a second container of a Kubernetes pod carries, under
#: this label, that container's command (words separated by spaces): it serves the job on
#: ``JOB_PORT`` in front of the image's own server, which shares the pod's network.
LABEL_POD_PROXY = "racetrack.pod-proxy"


@dataclass(frozen=True)
class BuilderSettings:
    """How images are built on this server (a container target's ``build`` settings).

    ``docker_cli``: a docker CLI that runs BuildKit builds (``DOCKER_BUILDKIT=1``); on Debian,
    ``/usr/bin/docker`` from the ``docker.io`` package. ``network``: the build's network mode
    (``host`` lets package managers reach a proxy on the host). ``repository``: the name
    images are tagged under (``<repository>/<job>:<version>-<deployment>``). ``engine``: the
    Docker engine that builds (``tcp://host:2376``, ``unix:///path``; None: ``DOCKER_HOST`` or
    the CLI's default), for a Lifecycle that runs in a pod with no engine of its own.
    ``build``: the settings every recipe honours (CA bundle, package index, base-image
    rewrites).
    """

    docker_cli: Path = Path("/usr/bin/docker")
    network: str = "host"
    repository: str = "racetrack-job"
    engine: str | None = None
    build: BuildSettings = field(default_factory=BuildSettings)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> BuilderSettings:
        """Settings from ``config.yaml``; an unknown name or a wrong type names the setting."""
        known = {"docker_cli", "network", "repository", "ca_bundle", "package_index", "base_images"}
        known.add("engine")
        unknown = sorted(set(values) - known)
        if unknown:
            raise RacetrackError(
                f"config.yaml, {where}: unknown setting {unknown[0]!r}. Known: "
                f"{', '.join(sorted(known))}"
            )
        for name in ("docker_cli", "network", "repository", "ca_bundle", "package_index", "engine"):
            if name in values and not isinstance(values[name], str):
                raise RacetrackError(f"config.yaml, {where}.{name}: give a string")
        rewrites = values.get("base_images") or {}
        if not isinstance(rewrites, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in rewrites.items()
        ):
            raise RacetrackError(
                f"config.yaml, {where}.base_images: give a mapping of image names to images, "
                "like {'python:3.11-slim': 'registry.example/python:3.11-slim'}"
            )
        ca_bundle = values.get("ca_bundle")
        return cls(
            docker_cli=Path(values.get("docker_cli", str(cls.docker_cli))),
            network=str(values.get("network", cls.network)),
            repository=str(values.get("repository", cls.repository)),
            engine=values.get("engine") or None,
            build=BuildSettings(
                ca_bundle=Path(ca_bundle) if ca_bundle else None,
                package_index=values.get("package_index") or None,
                base_images=dict(rewrites),
            ),
        )


@dataclass(frozen=True)
class BuiltImage:
    """An image built for one deployment: its tag and what the recipe said about it."""

    tag: str
    port: int
    base_image: str


class ImageBuilder:
    """Builds job images from image recipes with a BuildKit docker CLI."""

    def __init__(self, settings: BuilderSettings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir

    def tag_of(self, spec: JobSpec) -> str:
        """The tag of ``spec``'s image: one per deployment, so an older one is kept."""
        return f"{self.settings.repository}/{spec.name}:{spec.version}-{spec.deployment_id}"

    def build(self, spec: JobSpec, log: BuildLog) -> BuiltImage:
        """Render ``spec``'s image recipe and build it; DeployError with the last lines when
        the build fails."""
        recipe = spec.job_type.recipes.image
        if recipe is None:
            raise DeployError(
                f"job type '{spec.job_type.ref}' offers no image recipe, so a container target "
                "cannot build its jobs; deploy it to a target that accepts what it offers"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=self.workdir))
        try:
            os.chmod(scratch, 0o700)
            directory, secrets_dir = scratch / "context", scratch / "secrets"
            directory.mkdir()
            context = recipe.render(spec, directory, secrets_dir, self.settings.build)
            tag = self.tag_of(spec)
            log(f"building image {tag} from {context.base_image}")
            self._run(self.command(spec, context, tag), log)
            log(f"built image {tag}")
            return BuiltImage(tag=tag, port=context.port, base_image=context.base_image)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def command(self, spec: JobSpec, context: ImageContext, tag: str) -> list[str]:
        """The ``docker build`` command line (it holds secret file paths, never values)."""
        command = [str(self.settings.docker_cli), "build", "--progress", "plain"]
        command += ["--network", self.settings.network, "--tag", tag]
        command += ["--file", str(context.directory / context.dockerfile)]
        labels = {
            LABEL_JOB: spec.name,
            LABEL_VERSION: spec.version,
            LABEL_DEPLOYMENT: spec.deployment_id,
            LABEL_TIMESTAMP: str(spec.deployment_timestamp),
        }
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        for key, value in sorted(context.build_args.items()):
            command += ["--build-arg", f"{key}={value}"]
        for secret_id, path in sorted(context.secrets.items()):
            command += ["--secret", f"id={secret_id},src={path}"]
        if spec.no_cache:
            command.append("--no-cache")
        command.append(str(context.directory))
        return command

    def _run(self, command: list[str], log: BuildLog) -> None:
        if not self.settings.docker_cli.is_file():
            raise DeployError(
                f"the docker CLI '{self.settings.docker_cli}' (build setting docker_cli) is not "
                "installed; install one that supports BuildKit (Debian: docker.io) or set the "
                "path"
            )
        environ = {**os.environ, "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"}
        if self.settings.engine:
            environ["DOCKER_HOST"] = self.settings.engine
        tail = run_logged(command, environ, log)
        if tail is None:
            return
        reason = next((line for line in reversed(tail) if "ERROR" in line), "").strip()
        if any(NO_SPACE in line.lower() for line in tail):
            raise DeployError(
                f"building the job's image failed: the Docker engine's disk is full ({reason}). "
                f"{self._free_kept_contexts(environ, log)} If it stays full, free space on the "
                "engine (docker system df shows what uses it) or deploy a smaller source",
                "\n".join(tail),
            )
        raise DeployError(
            "building the job's image failed" + (f": {reason}" if reason else ""), "\n".join(tail)
        )

    def _free_kept_contexts(self, environ: Mapping[str, str], log: BuildLog) -> str:
        """Remove the copies of build contexts that BuildKit keeps after a build, the failed
        one's too (left there, a large one keeps the disk full for every later build); the
        layer cache stays. A sentence saying what was freed."""
        log("the engine's disk is full: removing the build contexts its build cache keeps")
        command = [str(self.settings.docker_cli), "builder", "prune", "--force"]
        command += ["--filter", "type=source.local"]
        try:
            done = subprocess.run(
                command, env=environ, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"The build contexts its build cache keeps could not be removed: {error}."
        if done.returncode != 0:
            return (
                "The build contexts its build cache keeps could not be removed: "
                f"{done.stderr.strip()[-300:]}."
            )
        freed = re.search(r"Total reclaimed space:\s*(\S+)", done.stdout)
        return "The build contexts its build cache kept were removed" + (
            f" ({freed.group(1)} freed)." if freed else "."
        )

"""Recipes: what a job type offers infrastructure targets, one kind of artifact each.

A job type knows how its jobs are built; a target knows where they run. They meet only here::

    job type ──offers──▶ Recipes(process=..., image=...) ◀──accepts── target (ArtifactKind set)

- a **process recipe** (``ProcessRecipe``) builds an environment folder on the host and names
  the command that serves the job from it (the ``local`` target runs it);
- an **image recipe** (``ImageRecipe``) renders a container build context: a Dockerfile and its
  files, the base image it chose, the port the job listens on, build arguments, and which build
  variables are secret (BuildKit secret files, never build arguments). Container targets build
  it with ``racetrack_core.images`` and run the image. An image recipe may also say what its
  base image is made of (``DebianBase``), so that ``racetrack images bootstrap`` can build that
  image from Debian packages where none can be pulled.

A target declares the kinds it accepts when it registers; the manifest validation refuses a
(job type, target) pair that has no kind in common, naming the targets that can run the job
type. Neither side imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: Where a driver writes build output; each call appends one line to the deployment's build log.
BuildLog = Callable[[str], None]


class ArtifactKind(StrEnum):
    """What a recipe produces, and so what a target must accept to run it."""

    PROCESS = "process"
    IMAGE = "image"


@runtime_checkable
class ProcessRecipe(Protocol):
    """How a job type builds and runs a job as a process on the host (no containers).

    ``environment_key`` identifies what ``build`` produces, so that a target can reuse an
    environment while the key does not change (same requirements, same runtime, same wrapper).
    """

    def environment_key(self, spec: JobSpec) -> str:
        """A short stable digest of everything ``build`` depends on."""

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        """Create the environment in ``env_dir``; raise DeployError when that fails."""

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        """The command line that serves the job on ``127.0.0.1:port`` (also set as JOB_PORT)."""


@dataclass(frozen=True)
class BuildSettings:
    """Site settings that every image build honours (a target's ``build`` settings).

    ``ca_bundle``: a PEM file of CAs that package managers inside the build trust (a proxy that
    re-signs TLS, as corporate ones do); given to the build as a BuildKit secret, so no layer
    keeps it. ``package_index``: the Python package index URL to install from (None: the
    installer's default). ``base_images``: rewrites of the images a recipe would start ``FROM``
    (``python:3.11-slim`` to a mirror or to a local image), for sites without Docker Hub.
    """

    ca_bundle: Path | None = None
    package_index: str | None = None
    base_images: Mapping[str, str] = field(default_factory=dict)

    def base_image(self, default: str) -> str:
        """The image to build ``FROM`` when a recipe would use ``default``."""
        return self.base_images.get(default, default)


@dataclass(frozen=True)
class ImageContext:
    """A rendered build context, ready for ``docker build``.

    ``directory`` holds the Dockerfile (named ``dockerfile``) and every file it copies.
    ``port`` is the port the job listens on inside the image (its ``JOB_PORT`` default); a
    target may set another through ``JOB_PORT``. ``build_args`` are plain ``--build-arg``
    values (never secret). ``secrets`` maps BuildKit secret ids to files outside
    ``directory``; the Dockerfile mounts them with ``RUN --mount=type=secret,id=...``.
    """

    directory: Path
    base_image: str
    port: int
    build_args: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Path] = field(default_factory=dict)
    dockerfile: str = "Dockerfile"


@runtime_checkable
class ImageRecipe(Protocol):
    """How a job type turns a job into a container image."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        """Write the build context of ``spec`` into the empty folder ``directory``.

        Build variables that must not be kept in the image go into files under
        ``secrets_dir`` (a private folder outside the context), named in
        ``ImageContext.secrets``. Raise DeployError for a job the recipe cannot build.
        """


@dataclass(frozen=True)
class DebianBase:
    """The base image an image recipe builds ``FROM``, described by its Debian packages.

    ``image`` is the reference the Dockerfile starts ``FROM`` (``acme/node-base:bookworm``);
    ``packages`` are installed on top of a minimal Debian ``suite``. ``racetrack images
    bootstrap`` builds it with debootstrap and imports it under ``image``; the registry checks
    the declaration when the job type is registered.
    """

    image: str
    packages: tuple[str, ...]
    suite: str = "bookworm"


@runtime_checkable
class DebianBasedRecipe(Protocol):
    """An image recipe that declares its base image's Debian packages (optional for a recipe)."""

    @property
    def debian_base(self) -> DebianBase:
        """The base image ``render`` starts ``FROM`` (before the site's ``base_images``
        rewrites), and what it is made of."""


def debian_base_of(recipe: object) -> DebianBase | None:
    """The base image an image recipe declares (None: it declares none). Not checked here: a
    recipe may hold anything in ``debian_base``; ``baseimages.base_image_of`` checks it."""
    return recipe.debian_base if isinstance(recipe, DebianBasedRecipe) else None


@dataclass(frozen=True)
class Recipes:
    """The recipes one job type offers, by kind of artifact (None: not offered)."""

    process: ProcessRecipe | None = None
    image: ImageRecipe | None = None

    def kinds(self) -> frozenset[ArtifactKind]:
        """The kinds of artifact this job type can be built into."""
        offered = {ArtifactKind.PROCESS: self.process, ArtifactKind.IMAGE: self.image}
        return frozenset(kind for kind, recipe in offered.items() if recipe is not None)


class OfferingJobType(Protocol):
    """What a spec tells of its job type: ``racetrack_core.registry.JobType`` is one. A
    protocol, so that the registry imports this module and not the other way round."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def ref(self) -> str: ...

    @property
    def recipes(self) -> Recipes: ...


@dataclass(frozen=True)
class JobSpec:
    """One job version to build and run.

    ``workspace`` is the job's own directory (the repository's ``git.directory``), already
    fetched and read-only to the driver. ``env`` is the complete runtime environment (the
    reserved variables, plugin variables, the manifest's ``runtime_env`` and runtime secrets);
    drivers pass it to the job as is and never log it. ``state_dir`` is a folder the driver may
    use for this job version's files; it survives restarts and is removed on delete.
    ``build_env`` holds the manifest's plain ``build_env``; ``build_secrets`` the secret build
    variables, which must never be kept in an image, a log or a file that outlives the build.
    """

    name: str
    version: str
    manifest: Mapping[str, Any]
    job_type: OfferingJobType
    workspace: Path
    env: Mapping[str, str]
    deployment_id: str
    deployment_timestamp: int
    state_dir: Path
    build_env: Mapping[str, str] = field(default_factory=dict)
    build_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    no_cache: bool = False

    @property
    def all_build_env(self) -> dict[str, str]:
        """Plain and secret build variables together (secret ones win), for one build step."""
        return {**self.build_env, **self.build_secrets}


def describe_kinds(kinds: frozenset[ArtifactKind]) -> str:
    """``process and image`` style words for a message (``no`` for none)."""
    names = sorted(str(kind) for kind in kinds)
    return " and ".join(names) if names else "no"

"""The golang job type's image: a multi-stage build whose last stage is the static binary.

The build context is what the process recipe builds from (``build.prepare_source``: the job
with go.mod fitted and the wrapper added) plus a Dockerfile rendered from ``Dockerfile.jinja``.
The builder stage starts ``FROM`` a Go image (``golang:1.19-bookworm`` unless the site's
base-image map rewrites it, for example to an image made from Debian's ``golang-go``); go.mod is
fitted to that image's Go. The last stage is ``FROM scratch``: the binary, the job's files, a CA
bundle and ``/tmp``, a few megabytes. The site's Go settings and the secret build variables
reach the build as BuildKit secret files only.

``GolangImageRecipe`` is the job type's image recipe (``racetrack_core.recipes``): it renders
the context with these functions and names the secret files for the image builder.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

import jinja2

from racetrack_core.infrastructure import JobSpec
from racetrack_core.recipes import BuildSettings, ImageContext
from racetrack_plugins.golang import build
from racetrack_plugins.golang.gomod import GoVersion
from racetrack_plugins.golang.process import gomod_path

DOCKERFILE_TEMPLATE = Path(__file__).resolve().parent / "Dockerfile.jinja"
#: The builder image before the site's rewrites, and the Go it holds.
DEFAULT_BUILDER_IMAGE = "golang:1.19-bookworm"
DEFAULT_BUILDER_GO: GoVersion = (1, 19, 0)
IMAGE_PORT = 7000
#: Settings of the server's environment that a build inside the image honours.
GO_SETTINGS = ("GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE")


def render_dockerfile(
    builder_image: str,
    prepared: build.PreparedSource,
    source_root: Path,
    builder_go: GoVersion,
    build_arg_names: Iterable[str] = (),
) -> str:
    """The Dockerfile that builds ``prepared``, whose copy of the job is ``source_root``
    (``src/`` of the build context)."""
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (a Dockerfile, not HTML)
    )
    template = environment.from_string(DOCKERFILE_TEMPLATE.read_text(encoding="utf-8"))
    requested = prepared.gomod.requested
    return template.render(
        builder_image=builder_image,
        module_dir=PurePosixPath(prepared.module_dir.relative_to(source_root)).as_posix(),
        mode="vendor" if prepared.vendored else "mod",
        loopvar_check=requested is not None and requested[:2] >= (1, 22) > builder_go[:2],
        build_arg_names=sorted(build_arg_names),
    )


def write_image_context(
    workspace: Path,
    gomod: str,
    directory: Path,
    builder_image: str,
    builder_go: GoVersion = DEFAULT_BUILDER_GO,
    build_arg_names: Iterable[str] = (),
) -> build.PreparedSource:
    """Lay out the build context in the empty folder ``directory``: ``src/`` and ``Dockerfile``.

    DeployError (from ``build.prepare_source``) for a job that cannot be built.
    """
    prepared = build.prepare_source(workspace, gomod, directory / "src", builder_go)
    dockerfile = render_dockerfile(
        builder_image, prepared, directory / "src", builder_go, build_arg_names
    )
    (directory / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    return prepared


def settings_file(path: Path, values: Mapping[str, str]) -> Path | None:
    """Write ``values`` as shell lines (``KEY='value'``) to a private file; None when empty."""
    if not values:
        return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    lines = "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))
    path.write_text(lines, encoding="utf-8")
    return path


def go_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The site's Go settings from the server's environment (``GOPROXY`` and the like)."""
    return {name: environ[name] for name in GO_SETTINGS if environ.get(name)}


class GolangImageRecipe:
    """Render a golang job's build context; see ``racetrack_core.recipes.ImageRecipe``."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        builder = settings.base_image(DEFAULT_BUILDER_IMAGE)
        write_image_context(
            spec.workspace, gomod_path(spec), directory, builder, DEFAULT_BUILDER_GO, spec.build_env
        )
        secrets: dict[str, Path] = {}
        for name, values in (
            ("go_settings", go_settings(build.server_environment())),
            ("build_secrets", dict(spec.build_secrets)),
        ):
            written = settings_file(secrets_dir / name, values)
            if written is not None:
                secrets[name] = written
        if settings.ca_bundle is not None:
            secrets["ca_bundle"] = settings.ca_bundle
        return ImageContext(
            directory=directory,
            base_image=builder,
            port=IMAGE_PORT,
            build_args=dict(spec.build_env),
            secrets=secrets,
        )

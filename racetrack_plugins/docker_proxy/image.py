"""The docker-proxy job type's image recipe: the job's own Dockerfile plus the proxy.

The build context is the job directory as it is (the author's ``COPY`` lines work unchanged),
plus ``.racetrack-proxy/``: the proxy's Go sources with their Swagger UI files, and the
fitted Dockerfile (``dockerfile.fit``). The proxy is compiled in a builder stage
``FROM golang:1.19-bookworm`` (rewritten by the site's base-image map, like every ``FROM``).
The manifest's plain ``build_env`` are build arguments; secret build variables and the site's
CA bundle are BuildKit secrets (``build_secrets``, ``ca_bundle``) that the author's ``RUN``
lines may mount; no layer keeps them.
"""

from __future__ import annotations

import importlib
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import BuildSettings, ImageContext
from racetrack_plugins.docker_proxy.dockerfile import PROXY_DIR, fit

PROXY_SOURCE = Path(__file__).resolve().parent / "proxy"
PROXY_FILES = (
    "go.mod",
    "main.go",
    "outer.go",
    "inner.go",
    "pod.go",
    "config.go",
    "server.go",
    "docs.go",
)
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")
DEFAULT_BUILDER_IMAGE = "golang:1.19-bookworm"
DEFAULT_DOCKERFILE = "Dockerfile"
#: The port of the author's server inside its own network namespace, as in the original.
DEFAULT_USER_PORT = 7004
IMAGE_PORT = 7000


def options(manifest: Mapping[str, object]) -> tuple[str, int]:
    """``jobtype_extra``'s Dockerfile path and the author's port, defaults filled in."""
    extra = manifest.get("jobtype_extra")
    extra = extra if isinstance(extra, Mapping) else {}
    path = extra.get("dockerfile_path")
    port = extra.get("user_module_port")
    return (
        path if isinstance(path, str) else DEFAULT_DOCKERFILE,
        port if isinstance(port, int) else DEFAULT_USER_PORT,
    )


def copy_proxy(destination: Path) -> None:
    """The proxy's Go sources and the Swagger UI files it embeds, into ``destination``."""
    (destination / "swagger-ui").mkdir(parents=True)
    for name in PROXY_FILES:
        shutil.copyfile(PROXY_SOURCE / name, destination / name)
    assets = Path(str(importlib.import_module("swagger_ui_bundle").swagger_ui_path))
    for name in SWAGGER_ASSETS:
        shutil.copyfile(assets / name, destination / "swagger-ui" / name)


def write_context(
    workspace: Path, manifest: Mapping[str, object], directory: Path, settings: BuildSettings
) -> Path:
    """Lay out the build context in ``directory``; return the fitted Dockerfile's path."""
    dockerfile_path, port = options(manifest)
    source = workspace / dockerfile_path
    if ".." in PurePosixPath(dockerfile_path).parts or not source.is_file():
        raise DeployError(
            f"jobtype_extra.dockerfile_path: no file '{dockerfile_path}' in the job directory; "
            "a docker-proxy job brings its own Dockerfile (default: Dockerfile)"
        )
    text = source.read_text(encoding="utf-8", errors="replace")
    shutil.copytree(workspace, directory, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git"))  # fmt: skip
    proxy_dir = directory / PROXY_DIR
    if proxy_dir.exists():
        raise DeployError(f"the job directory has a '{PROXY_DIR}' entry; Racetrack needs the name")
    copy_proxy(proxy_dir)
    ignore = directory / ".dockerignore"
    if ignore.is_file():  # whatever the author leaves out, the proxy's sources stay in
        with ignore.open("a", encoding="utf-8") as lines:
            lines.write(f"\n!{PROXY_DIR}\n!{PROXY_DIR}/**\n")
    builder = settings.base_image(DEFAULT_BUILDER_IMAGE)
    fitted = fit(text, dict(settings.base_images), builder, port)
    (proxy_dir / "Dockerfile").write_text(fitted, encoding="utf-8")
    return proxy_dir / "Dockerfile"


class DockerProxyImageRecipe:
    """Render a docker-proxy job's build context; see ``racetrack_core.recipes.ImageRecipe``."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        dockerfile = write_context(spec.workspace, spec.manifest, directory, settings)
        secrets: dict[str, Path] = {}
        if spec.build_secrets:
            secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = secrets_dir / "build_secrets"
            path.touch(mode=0o600)
            path.write_text(
                "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(spec.build_secrets.items())),
                encoding="utf-8",
            )
            secrets["build_secrets"] = path
        if settings.ca_bundle is not None:
            secrets["ca_bundle"] = settings.ca_bundle
        return ImageContext(
            directory=directory,
            base_image=first_image(dockerfile.read_text(encoding="utf-8")),
            port=IMAGE_PORT,
            build_args=dict(spec.build_env),
            secrets=secrets,
            dockerfile=str(dockerfile.relative_to(directory)),
        )


def first_image(dockerfile: str) -> str:
    """The image of the Dockerfile's first ``FROM`` (what the build log names)."""
    for line in dockerfile.splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            images = [word for word in words[1:] if not word.startswith("--")]
            if images:
                return images[0]
    return "unknown"

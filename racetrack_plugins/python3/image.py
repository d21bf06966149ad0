"""The python3 job type's image recipe: the build context of a job's container image.

``render`` lays out the context that ``Dockerfile.jinja`` documents (the job directory, a
standalone copy of the wrapper with its pinned requirements) and renders the Dockerfile. The
base image is ``python:<python_version>-slim`` unless the site's build settings rewrite it (a
mirror, or a local image built from Debian packages). Secret build variables, the CA bundle
and the package index reach the build as BuildKit secret files only.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

import jinja2

from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import BuildSettings, ImageContext
from racetrack_plugins.python3.packaging import (
    check_entrypoint,
    copy_wrapper,
    extra,
    requirements_file,
)

DOCKERFILE_TEMPLATE = Path(__file__).resolve().parent / "Dockerfile.jinja"
#: The Python a job's image runs when ``jobtype_extra.python_version`` is left out (Debian 12's).
DEFAULT_PYTHON_VERSION = "3.11"
IMAGE_PORT = 7000
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_base_image(python_version: str, debian_version: str | None = None) -> str:
    """The image a job of ``python_version`` (on ``debian_version``, default ``slim``) starts
    from before the site's rewrites."""
    return f"python:{python_version}-{debian_version or 'slim'}"


def render_dockerfile(
    base_image: str,
    options: Mapping[str, object],
    system_dependencies: list[str] | None = None,
    build_arg_names: list[str] | None = None,
    python_version: str | None = None,
) -> str:
    """The Dockerfile of a job with these ``jobtype_extra`` options."""
    # A Dockerfile, not HTML: escaping would corrupt it.
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    template = environment.from_string(DOCKERFILE_TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        base_image=base_image,
        extra=options,
        system_dependencies=system_dependencies or [],
        build_arg_names=build_arg_names or [],
        python_version=python_version,
    )


class Python3ImageRecipe:
    """Render a python3 job's build context; see ``racetrack_core.recipes.ImageRecipe``."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        options = extra(spec)
        check_entrypoint(spec)
        requirements = requirements_file(spec)
        if requirements is not None and not requirements.is_file():
            raise DeployError(
                f"requirements file '{options['requirements_path']}' (jobtype_extra."
                f"requirements_path) not found in the job directory"
            )
        for name in spec.all_build_env:
            if not ENV_NAME.fullmatch(name):
                raise DeployError(
                    f"build variable {name!r} is not a shell variable name; use letters, "
                    "digits and underscores, not starting with a digit"
                )
        version = str(options.get("python_version") or DEFAULT_PYTHON_VERSION)
        debian = options.get("debian_version")
        base_image = settings.base_image(default_base_image(version, str(debian or "") or None))
        shutil.copytree(spec.workspace, directory / "job", symlinks=True)
        copy_wrapper(directory / "wrapper")
        plain = {k: v for k, v in spec.build_env.items() if k not in spec.build_secrets}
        dependencies = [str(name) for name in spec.manifest.get("system_dependencies") or []]
        (directory / "Dockerfile").write_text(
            render_dockerfile(
                base_image, options, dependencies, sorted(plain), options.get("python_version")
            ),
            encoding="utf-8",
        )
        secrets: dict[str, Path] = {}
        if spec.build_secrets:
            secrets["build_secrets"] = _private_file(
                secrets_dir / "build_secrets",
                "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(spec.build_secrets.items())),
            )
        if settings.ca_bundle is not None:
            if not settings.ca_bundle.is_file():
                raise DeployError(
                    f"build setting ca_bundle: '{settings.ca_bundle}' is not a file; name a "
                    "PEM bundle of CA certificates, like /etc/ssl/certs/ca-certificates.crt"
                )
            secrets["ca_bundle"] = settings.ca_bundle
        if settings.package_index:
            secrets["package_index"] = _private_file(
                secrets_dir / "package_index", settings.package_index
            )
        return ImageContext(
            directory=directory,
            base_image=base_image,
            port=IMAGE_PORT,
            build_args=plain,
            secrets=secrets,
        )


def _private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return path

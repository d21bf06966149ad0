"""The base image the python3 Dockerfile template builds ``FROM``, made from Debian packages.

``racetrack images bootstrap`` builds it where no registry can be reached. Its packages are
what ``Dockerfile.jinja`` uses: ``python3 -m venv`` (python3, python3-venv, which carries pip
for the venv), ``useradd`` (passwd), and the CA store pip checks package indexes against.
"""

from __future__ import annotations

from racetrack_core import hookimpl
from racetrack_core.baseimages import BaseImageRegistrar

#: The image name; a site maps the template's default base image to it (see
#: docs/infrastructure/base-images.md).
BASE_IMAGE = "racetrack/python3-base:bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")


@hookimpl
def register_base_images(registry: BaseImageRegistrar) -> None:
    registry.register(BASE_IMAGE, PACKAGES, suite="bookworm")

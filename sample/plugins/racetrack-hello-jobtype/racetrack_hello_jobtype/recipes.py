"""How a hello job is built: as a process (the ``local`` target) or an image (``docker``).

Both recipes ship the same one-file runtime (``server.py``); Racetrack's targets do the rest.
The image recipe declares what its base image is made of (``debian_base``), so that ``racetrack
images bootstrap`` can build it from Debian packages on a machine that cannot pull images.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from racetrack_core.infrastructure import BuildLog, JobSpec
from racetrack_core.recipes import BuildSettings, DebianBase, ImageContext

SERVER = Path(__file__).resolve().parent / "server.py"
#: The base image: Debian with its Python, all that ``server.py`` needs.
BASE_IMAGE = DebianBase("racetrack/hello-base:bookworm", packages=("python3",))
PORT = 7000
#: The user the job runs as in its container: ``nobody``, which every Debian root has.
NOBODY = 65534


def arguments(spec: JobSpec) -> list[str]:
    """The server's arguments: the manifest's greeting and the job type version it runs on."""
    greeting = str((spec.manifest.get("jobtype_extra") or {}).get("greeting", "Hello"))
    return ["--greeting", greeting, "--job-type", spec.job_type.ref]


class HelloProcessRecipe:
    """The environment is a folder holding ``server.py``; the server's Python runs it."""

    def environment_key(self, spec: JobSpec) -> str:
        return "hello-" + hashlib.sha256(SERVER.read_bytes()).hexdigest()[:16]

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        shutil.copyfile(SERVER, env_dir / "server.py")
        log("copied the hello server")

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        return [sys.executable, str(env_dir / "server.py"), *arguments(spec)]


class HelloImageRecipe:
    """A Dockerfile that copies ``server.py`` onto a Debian base image with Python and runs it."""

    debian_base = BASE_IMAGE

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        base = settings.base_image(BASE_IMAGE.image)
        shutil.copyfile(SERVER, directory / "server.py")
        command = ["python3", "/srv/server.py", *arguments(spec)]
        (directory / "Dockerfile").write_text(
            f"FROM {base}\n"
            f"ENV JOB_PORT={PORT}\n"
            "COPY server.py /srv/server.py\n"
            f"USER {NOBODY}\n"
            f"CMD {json.dumps(command)}\n",
            encoding="utf-8",
        )
        return ImageContext(directory=directory, base_image=base, port=PORT)

"""How a hello job is built: as a process (the ``local`` target) or an image (``docker``).

Both recipes ship the same one-file runtime (``server.py``); Racetrack's targets do the rest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from racetrack_core.infrastructure import BuildLog, JobSpec
from racetrack_core.recipes import BuildSettings, ImageContext

SERVER = Path(__file__).resolve().parent / "server.py"
BASE_IMAGE = "python:3.11-slim"
PORT = 7000


def greeting(spec: JobSpec) -> str:
    return str((spec.manifest.get("jobtype_extra") or {}).get("greeting", "Hello"))


class HelloProcessRecipe:
    """The environment is a folder holding ``server.py``; the server's Python runs it."""

    def environment_key(self, spec: JobSpec) -> str:
        return "hello-" + hashlib.sha256(SERVER.read_bytes()).hexdigest()[:16]

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        shutil.copyfile(SERVER, env_dir / "server.py")
        log("copied the hello server")

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        return [sys.executable, str(env_dir / "server.py"), "--greeting", greeting(spec)]


class HelloImageRecipe:
    """A Dockerfile that copies ``server.py`` onto a Python base image and runs it."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        base = settings.base_image(BASE_IMAGE)
        shutil.copyfile(SERVER, directory / "server.py")
        command = ["python3", "/srv/server.py", "--greeting", greeting(spec)]
        (directory / "Dockerfile").write_text(
            f"FROM {base}\n"
            f"ENV JOB_PORT={PORT}\n"
            "COPY server.py /srv/server.py\n"
            f"CMD {json.dumps(command)}\n",
            encoding="utf-8",
        )
        return ImageContext(directory=directory, base_image=base, port=PORT)

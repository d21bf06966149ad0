"""The Docker engine, through the docker command line: is it there, what does it hold, import.

``docker import`` turns a tar stream of a root folder into a one-layer image; it needs no
registry and no BuildKit, so any docker CLI works (the one on ``PATH`` by default).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from racetrack_core.baseimages import BaseImageError

#: What every imported base image starts with; docker import leaves the config empty otherwise.
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
)
ANSWER_TIMEOUT = 20.0


class DockerEngine:
    """The engine that the docker CLI ``cli`` (a name on ``PATH`` or a path) talks to."""

    def __init__(self, cli: str = "docker") -> None:
        self.cli = cli

    def check(self) -> str:
        """The engine's version; BaseImageError naming what to install or start otherwise."""
        executable = shutil.which(self.cli)
        if executable is None:
            raise BaseImageError(
                f"the docker command '{self.cli}' is not installed: install it "
                "(apt-get install docker.io) or name it with --docker PATH "
                "(setting base_images_docker_cli)"
            )
        self.cli = executable
        try:
            result = subprocess.run(
                [self.cli, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
                timeout=ANSWER_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result = None
        if result is None or result.returncode != 0 or not result.stdout.strip():
            said = _last_line(result.stderr) if result is not None else "no answer in 20 s"
            raise BaseImageError(
                f"the Docker engine does not answer ({said}): start dockerd, or point "
                "DOCKER_HOST at a running engine"
            )
        return result.stdout.strip()

    def labels(self, image: str) -> dict[str, str] | None:
        """The labels of ``image``, or None when the engine has no such image."""
        result = subprocess.run(
            [self.cli, "image", "inspect", "--format", "{{json .Config.Labels}}", image],
            capture_output=True,
            text=True,
            timeout=ANSWER_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            return None
        labels = json.loads(result.stdout.strip() or "null")
        return {str(k): str(v) for k, v in (labels or {}).items()}

    def import_root(
        self, root: Path, image: str, labels: Mapping[str, str], changes: Sequence[str] = ()
    ) -> str:
        """Import the folder ``root`` as ``image`` with ``labels``; return the image id."""
        tar = shutil.which("tar")
        if tar is None:
            raise BaseImageError("tar is not installed: apt-get install tar")
        command = [self.cli, "import"]
        for change in (*IMAGE_CHANGES, *changes):
            command += ["--change", change]
        for key, value in sorted(labels.items()):
            command += ["--change", f"LABEL {key}={json.dumps(value)}"]
        command += ["-", image]
        with subprocess.Popen(
            [tar, "--numeric-owner", "-C", str(root), "-c", "."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as packer:
            assert packer.stdout is not None
            assert packer.stderr is not None
            imported = subprocess.run(
                command, stdin=packer.stdout, capture_output=True, text=True, check=False
            )
            packer.stdout.close()
            packer_errors = packer.stderr.read().decode(errors="replace")
        if packer.returncode != 0:
            raise BaseImageError(f"tar of {root} failed: {_last_line(packer_errors)}")
        if imported.returncode != 0:
            raise BaseImageError(f"docker import of {image} failed: {_last_line(imported.stderr)}")
        return imported.stdout.strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"

"""What the local target will not honour in a manifest, said as deployment warnings.

It runs one process per job version, enforces no memory or CPU limits and installs no system
packages: a manifest that asks for those still deploys, with a sentence for each.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any


def review(manifest: Mapping[str, Any]) -> Iterable[str]:
    """One warning per field the local target cannot honour."""
    replicas = manifest.get("replicas")
    if isinstance(replicas, int) and replicas > 1:
        yield (
            f"replicas: {replicas} is not honoured on the local target, which runs one process "
            "per job version; deploy to docker for several"
        )
    if manifest.get("resources"):
        yield (
            "resources are not enforced on the local target (no memory or CPU limits); deploy "
            "to docker for limits"
        )
    wanted = [str(name) for name in manifest.get("system_dependencies") or []]
    if wanted:
        missing = missing_packages(wanted)
        if missing is None:
            yield (
                f"system_dependencies ({', '.join(wanted)}) cannot be checked on this server "
                "(no dpkg-query); the local target installs no packages"
            )
        elif missing:
            yield (
                f"system_dependencies not installed on this server: {', '.join(missing)}; the "
                "local target installs no packages (ask an admin to install them, or deploy "
                "to docker, which installs them into the image)"
            )


def missing_packages(names: list[str]) -> list[str] | None:
    """The Debian packages of ``names`` that are not installed (None: no dpkg here)."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return None
    missing = []
    for name in names:
        done = subprocess.run(
            [dpkg_query, "-W", "-f", "${Status}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or "install ok installed" not in done.stdout:
            missing.append(name)
    return missing

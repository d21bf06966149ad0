"""Taking the secret env files that a manifest names out of a fetched job directory.

``secret_build_env_file`` and ``secret_runtime_env_file`` name files of the job directory whose
values the client sends in ``secret_vars``. The files themselves must never stay on the server:
the original ``racetrack-client`` uploads them in the build context, and a repository may hold
them too. So the pipeline calls :func:`remove_secret_files` on every source it fetches, before
anything else reads it. Names are resolved without following a link out of the job directory,
so a hostile manifest or context cannot make the server delete a file of its own.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

SECRET_FILE_FIELDS = ("secret_build_env_file", "secret_runtime_env_file")
"""Manifest fields that name a secret env file, relative to the job directory."""


def secret_file_names(manifest: Mapping[str, Any]) -> list[str]:
    """The normalized relative names of the secret env files ``manifest`` names."""
    names = []
    for field in SECRET_FILE_FIELDS:
        value = manifest.get(field)
        if not isinstance(value, str) or not value or "\0" in value:
            continue
        name = posixpath.normpath(value)
        if name.startswith(("/", "../")) or name in (".", ".."):
            continue  # the schema refuses these; nothing of the job directory to remove
        names.append(name)
    return names


def remove_secret_files(
    job_dir: Path, manifest: Mapping[str, Any], log: Callable[[str], None] | None = None
) -> list[str]:
    """Delete the secret env files that ``manifest`` names from ``job_dir``; return the names
    removed (each one logged with ``log``).

    A name that is a symbolic link is removed, and so is what it points to when that lies
    inside ``job_dir``. A name reached through a link that leads outside is left alone: it is
    not part of the job directory.
    """
    root = os.path.realpath(job_dir)
    removed = []
    for name in secret_file_names(manifest):
        path = Path(job_dir, name)
        if not _inside(os.path.realpath(path.parent), root) or not os.path.lexists(path):
            continue
        target = os.path.realpath(path)
        _delete(path)
        if target != root and _inside(target, root) and os.path.lexists(target):
            _delete(Path(target))
        removed.append(name)
        if log is not None:
            log(f"removed the secret env file {name} from the job's source")
    return removed


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()

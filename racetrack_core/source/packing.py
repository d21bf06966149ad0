"""Packing a job directory into a build context: base64 of a tar.gz, as ``POST /deploy`` takes.

Standard library only, and no import from Racetrack, so that the CLI (which imports no server
module) can use this module as it is, or a copy of it.

Members are the directory's files and symbolic links, named relative to it (``job.yaml``,
``src/main.py``), sorted, owned by nobody in particular (uid 0, no names). ``.git`` is always
left out; with ``respect_gitignore`` so is what git ignores: inside a git work tree git itself
says what (``git ls-files --cached --others --exclude-standard``); elsewhere each directory's
``.gitignore`` is read with a simple subset of its rules (globs, ``/`` anchors, trailing ``/``
for directories, ``!`` to re-include). Names given in ``exclude`` (the secret env files that the
manifest names) are left out too, so that secrets never travel in a context.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import io
import os
import posixpath
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path


class BuildContextError(ValueError):
    """A directory cannot be packed: it is missing, or a link in it leads outside of it."""


def pack_build_context(
    directory: str | os.PathLike[str],
    *,
    respect_gitignore: bool = True,
    exclude: Iterable[str] = (),
) -> str:
    """Return the build context of ``directory``: base64 (ASCII) of a gzip-compressed tar.

    ``exclude`` holds names relative to ``directory`` (``build.env``, ``conf/secret.env``) that
    are never packed.
    """
    root = Path(directory)
    if not root.is_dir():
        raise BuildContextError(f"{root} is not a directory")
    names = _git_files(root) if respect_gitignore else None
    if names is None:
        names = _walk_files(root, respect_gitignore)
    left_out = {posixpath.normpath(name) for name in exclude}
    names = [name for name in names if posixpath.normpath(name) not in left_out]
    real_root = os.path.realpath(root)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name in sorted(set(names)):
            path = root / name
            info = archive.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.issym():
                target = os.path.realpath(path)
                if target != real_root and not target.startswith(real_root + os.sep):
                    raise BuildContextError(
                        f"{path} is a symbolic link to {info.linkname!r}, outside {root}: "
                        "Racetrack would refuse it; copy the file in instead"
                    )
                archive.addfile(info)
            elif info.isfile():
                with path.open("rb") as content:
                    archive.addfile(info, content)
            # Sockets, fifos and devices are no part of a job's source: left out.
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _git_files(root: Path) -> list[str] | None:
    """Files under ``root`` that git tracks or would track, or None outside a git work tree."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            check=False,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    names = []
    for raw in listed.stdout.split(b"\0"):
        name = os.fsdecode(raw)
        path = root / name
        # Deleted but still in the index, or a submodule (a directory): nothing to pack.
        if name and ".git" not in name.split("/") and (path.is_symlink() or path.is_file()):
            names.append(name)
    return names


def _walk_files(root: Path, respect_gitignore: bool) -> list[str]:
    names: list[str] = []
    rules: dict[str, list[tuple[str, str]]] = {}  # directory -> (its path, pattern) rules
    for current, dirnames, filenames in os.walk(root):
        relative = os.path.relpath(current, root).replace(os.sep, "/")
        relative = "" if relative == "." else relative
        inherited = rules.get(relative, [])
        ignore_file = Path(current) / ".gitignore"
        if respect_gitignore and ignore_file.is_file():
            lines = ignore_file.read_text(errors="replace").splitlines()
            inherited = inherited + [(relative, line.strip()) for line in lines]
        kept_dirs = []
        for dirname in sorted(dirnames):
            path = f"{relative}/{dirname}" if relative else dirname
            if dirname == ".git" or _ignored(path, True, inherited):
                continue
            if (Path(current) / dirname).is_symlink():
                names.append(path)  # a link to a directory is packed as a link
                continue
            kept_dirs.append(dirname)
            rules[path] = inherited
        dirnames[:] = kept_dirs
        for filename in filenames:
            path = f"{relative}/{filename}" if relative else filename
            if not _ignored(path, False, inherited):
                names.append(path)
    return names


def _ignored(path: str, is_dir: bool, rules: list[tuple[str, str]]) -> bool:
    """Whether ``path`` is ignored: the last matching rule wins, ``!`` rules re-include."""
    ignored = False
    for base, rule in rules:
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        if pattern.endswith("/"):
            if not is_dir:
                continue
            pattern = pattern.rstrip("/")
        subject = path[len(base) + 1 :] if base else path
        if "/" in pattern:
            matched = fnmatch.fnmatchcase(subject, pattern.lstrip("/"))
        else:
            matched = fnmatch.fnmatchcase(subject.rsplit("/", 1)[-1], pattern)
        if matched:
            ignored = not negate
    return ignored

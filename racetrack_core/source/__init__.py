"""Fetching a job's source: a git clone of one commit, or an uploaded build context.

    fetch_git(remote, branch=..., directory=..., credentials=..., dest=..., log=...,
              allowed_hosts=...)
        -> FetchedSource(path, commit)       one commit of one branch, credentials kept secret,
                                             loopback and private hosts refused unless allowed
    check_remote_host(remote, allowed_hosts)  the same host check alone, before a deployment
    unpack_build_context(b64, dest)  -> dest  a base64 tar.gz from `racetrack deploy`, checked
    check_context_size(b64, max_bytes) -> int its compressed size, refused over the limit
    pack_build_context(directory)    -> str   the same format, made from a folder (stdlib only)
    remove_secret_files(job_dir, manifest)     the secret env files it names, taken out

Every failure a user can cause raises :class:`SourceError` with a sentence saying what to do.
How credentials are handled, and the limits on build contexts, are in ``docs/sources.md``.
"""

from __future__ import annotations

from racetrack_core.source.archive import (
    MAX_ARCHIVE_BYTES,
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    check_context_size,
    unpack_build_context,
)
from racetrack_core.source.errors import SourceError
from racetrack_core.source.git import GIT_TIMEOUT, FetchedSource, fetch_git
from racetrack_core.source.packing import BuildContextError, pack_build_context
from racetrack_core.source.remotes import Credentials, check_remote_host
from racetrack_core.source.secret_files import remove_secret_files, secret_file_names

__all__ = [
    "GIT_TIMEOUT",
    "MAX_ARCHIVE_BYTES",
    "MAX_MEMBERS",
    "MAX_UNPACKED_BYTES",
    "BuildContextError",
    "Credentials",
    "FetchedSource",
    "SourceError",
    "check_context_size",
    "check_remote_host",
    "fetch_git",
    "pack_build_context",
    "remove_secret_files",
    "secret_file_names",
    "unpack_build_context",
]

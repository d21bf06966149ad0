"""What a manifest's git fields may say: the remote's transport and host, the branch, the folder.

Each check raises :class:`SourceError` naming the manifest field and how to fix it, before git
runs. A remote's host goes through ``racetrack_core.source_hosts``: loopback and private
addresses are refused unless the setting ``source_allowed_hosts`` names them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from racetrack_core.source.errors import SourceError
from racetrack_core.source_hosts import SourceHostError, check_url

ALLOWED_PROTOCOLS = ("https", "http", "ssh", "git")
"""Transports a remote may use; ``file://`` and local paths would expose the server's disk."""

Credentials = tuple[str, str]
"""``(username, password)``; the password is usually an access token."""

_SCP_LIKE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*@[A-Za-z0-9.-]+:.+")  # git@host:owner/repo


def split_credentials(remote: str) -> tuple[str, Credentials | None]:
    """``remote`` without the ``user:password@`` part of an http(s) URL, and those credentials."""
    parts = urlsplit(remote)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return remote, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, has_password, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    if not has_password:
        return clean, None
    return clean, (unquote(username), unquote(password))


def check_remote(remote: str) -> None:
    """Refuse a remote that is not a URL of an allowed transport (or ``user@host:path``)."""
    scheme = urlsplit(remote).scheme.lower()
    if scheme in ALLOWED_PROTOCOLS and not remote.startswith("-"):
        return
    if _SCP_LIKE.fullmatch(remote):
        return
    allowed = ", ".join(f"{name}://" for name in ALLOWED_PROTOCOLS)
    raise SourceError(
        f"manifest field 'git.remote': {remote!r} is not a supported git URL; "
        f"use one of {allowed} (for example https://github.com/owner/repository)"
    )


def check_remote_host(remote: str, allowed_hosts: Iterable[str]) -> list[str]:
    """Refuse a remote on a loopback or private address that ``allowed_hosts`` does not name;
    return the addresses its host was checked at (empty: allowed by name, or unresolved)."""
    url = remote
    if _SCP_LIKE.fullmatch(remote):  # user@host:path is ssh://user@host/path
        url = "ssh://" + remote.replace(":", "/", 1)
    try:
        return check_url(url, allowed_hosts, "manifest field 'git.remote':")
    except SourceHostError as exc:
        raise SourceError(str(exc)) from None


def check_branch(branch: str | None) -> None:
    if branch is None:
        return
    if not branch or branch.startswith("-") or any(c.isspace() or ord(c) < 32 for c in branch):
        raise SourceError(f"manifest field 'git.branch': {branch!r} is not a valid branch name")


def check_directory(directory: str) -> PurePosixPath:
    """``git.directory`` normalized; refused when absolute, escaping with ``..``, or in ``.git``."""
    field = f"manifest field 'git.directory': {directory!r}"
    if "\0" in directory:
        raise SourceError(f"{field} contains a NUL character")
    if directory.startswith("/"):
        raise SourceError(f"{field} must be a path relative to the repository's root, not absolute")
    normalized = PurePosixPath(posixpath.normpath(directory or "."))
    if normalized.parts[:1] == ("..",):
        raise SourceError(f"{field} points outside the repository")
    if normalized.parts[:1] == (".git",):
        raise SourceError(f"{field} points into git's own .git directory")
    return normalized

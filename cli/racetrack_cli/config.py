"""The client's configuration, ``~/.racetrack/config.yaml``, in the ``racetrack-client`` format.

Keys: ``lifecycle_url`` (the current remote: a URL or an alias), ``lifecycle_url_aliases``
(alias to URL), ``user_auths`` (token by *resolved* Lifecycle URL) and ``git_credentials``
(repository or host URL to ``{username, password}``), so that a user can switch between this
client and ``racetrack-client`` without losing anything. The folder is ``RACETRACK_CONFIG_DIR``
when set. The file is written with mode 600, and reading one that others may read warns.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from racetrack_cli import yaml_subset
from racetrack_cli.output import warn

CONFIG_DIR_VARIABLE = "RACETRACK_CONFIG_DIR"
CONFIG_NAME = "config.yaml"
#: This project's ``racetrack up`` serves Lifecycle on 7102 (racetrack-client defaulted to 7002).
DEFAULT_REMOTE = "http://127.0.0.1:7102"
LIFECYCLE_PATH = "/lifecycle"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def config_path() -> Path:
    """Where the configuration is: ``$RACETRACK_CONFIG_DIR/config.yaml`` or under ~/.racetrack."""
    folder = os.environ.get(CONFIG_DIR_VARIABLE)
    base = Path(folder).expanduser() if folder else Path.home() / ".racetrack"
    return base / CONFIG_NAME


@dataclass
class ClientConfig:
    """The configuration as the ``racetrack-client`` package also reads and writes it."""

    lifecycle_url: str = DEFAULT_REMOTE
    lifecycle_url_aliases: dict[str, str] = field(default_factory=dict)
    user_auths: dict[str, str] = field(default_factory=dict)
    git_credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> ClientConfig:
        """Read the configuration, or the defaults when there is no file yet."""
        path = path or config_path()
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except FileNotFoundError:
            return cls(path=path)
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warn(
                f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}) and holds "
                f"tokens: run chmod 600 {path}"
            )
        try:
            data = yaml_subset.load(text)
        except ValueError as exc:
            raise click.ClickException(
                f"{path} is not valid YAML: {exc}; fix or remove it"
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise click.ClickException(f"{path} must hold a mapping of settings; fix or remove it")
        return cls(
            lifecycle_url=str(data.get("lifecycle_url") or DEFAULT_REMOTE),
            lifecycle_url_aliases=_strings(data.get("lifecycle_url_aliases")),
            user_auths=_strings(data.get("user_auths")),
            git_credentials={
                str(url): _strings(credentials)
                for url, credentials in (data.get("git_credentials") or {}).items()
                if isinstance(credentials, dict)
            },
            path=path,
        )

    def save(self) -> None:
        """Write the configuration atomically, readable by its owner only (mode 600)."""
        path = self.path or config_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(prefix=".config-", dir=path.parent)
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(yaml_subset.dump(self.as_dict()))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def as_dict(self) -> dict[str, Any]:
        return {
            "lifecycle_url": self.lifecycle_url,
            "lifecycle_url_aliases": dict(self.lifecycle_url_aliases),
            "user_auths": dict(self.user_auths),
            "git_credentials": {url: dict(creds) for url, creds in self.git_credentials.items()},
        }

    def resolve(self, remote: str | None = None) -> str:
        """The Lifecycle URL of ``remote`` (an alias or URL), or of the current remote."""
        return resolve_url(remote or self.lifecycle_url, self.lifecycle_url_aliases)

    def token(self, lifecycle_url: str) -> str | None:
        """The token saved for a resolved Lifecycle URL."""
        return self.user_auths.get(lifecycle_url)

    def find_git_credentials(self, repository: str) -> dict[str, str] | None:
        """Credentials for a repository URL: the exact URL, then shorter paths, then the host."""
        for candidate in git_lookup_keys(repository):
            if candidate in self.git_credentials:
                return self.git_credentials[candidate]
        return None


def resolve_url(remote: str, aliases: dict[str, str]) -> str:
    """An alias becomes its URL; no scheme gets ``https://``; no path gets ``/lifecycle``."""
    url = aliases.get(remote, remote).strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url = f"{parts.scheme}://{parts.netloc}{LIFECYCLE_PATH}"
    return url.rstrip("/")


def is_local(url: str) -> bool:
    """Whether a URL names this machine (127.0.0.1 or localhost)."""
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def git_lookup_keys(repository: str) -> list[str]:
    """Keys to try for a repository URL, most specific first, ending with the bare host."""
    url = repository.strip().rstrip("/")
    keys = [url]
    if url.endswith(".git"):
        keys.append(url.removesuffix(".git"))
    parts = urlsplit(url if "://" in url else f"https://{url}")
    base = f"{parts.scheme}://{parts.netloc}"
    segments = [segment for segment in parts.path.removesuffix(".git").split("/") if segment]
    for count in range(len(segments), 0, -1):
        keys.append(f"{base}/{'/'.join(segments[:count])}")
    keys += [base, parts.netloc]
    return list(dict.fromkeys(keys))


def mask(secret: str) -> str:
    """A secret as ``get config`` shows it: its last four characters at most."""
    return "********" + (secret[-4:] if len(secret) >= 16 else "")


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items() if item is not None}

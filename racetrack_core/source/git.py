"""Cloning one commit of a job's git repository, with credentials that never touch disk or argv.

The system ``git`` binary runs in a subprocess (GitPython would wrap the same binary and add a
dependency without removing any of the work below: the environment, the timeout of a whole
process group, the scrubbing of stderr). Credentials reach git through a credential helper
declared in ``GIT_CONFIG_*`` environment variables: the helper is a shell function that prints
two other environment variables, so the secret is on no command line, in no file, and in no
``.git/config``; the helper is scoped to the remote's host, so a redirect elsewhere gets nothing.

The remote's host must be a global address unless the setting ``source_allowed_hosts`` names it
(``racetrack_core.source_hosts``). An http(s) clone connects only to the addresses that were
checked (``http.curloptResolve``) and follows no redirect, so neither a DNS answer that changes
after the check nor a redirect leads it to a private address.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from racetrack_core.redaction import mask_url_credentials
from racetrack_core.source.errors import SourceError
from racetrack_core.source.remotes import (
    ALLOWED_PROTOCOLS,
    Credentials,
    check_branch,
    check_directory,
    check_remote,
    check_remote_host,
    split_credentials,
)

GIT_TIMEOUT = 300.0
"""Seconds a clone may take, all of it, before it is killed."""

_USERNAME_VAR = "RACETRACK_GIT_USERNAME"
_PASSWORD_VAR = "RACETRACK_GIT_PASSWORD"  # noqa: S105 (the variable's name, not a secret)
# Reads git's request (so git never writes to a closed pipe), answers only "get".
_CREDENTIAL_HELPER = (
    '!f() { cat >/dev/null; test "$1" = get || return 0; '
    f'printf "username=%s\\npassword=%s\\n" "${_USERNAME_VAR}" "${_PASSWORD_VAR}"; }}; f'
)
# Variables that would point git at another repository than the one being cloned.
_REPOSITORY_ENV = {
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "SSH_ASKPASS",
}


@dataclass(frozen=True)
class FetchedSource:
    """A fetched job: its directory (``git.directory`` inside the clone) and the commit sha."""

    path: Path
    commit: str


def fetch_git(
    remote: str,
    *,
    branch: str | None = None,
    directory: str = ".",
    credentials: Credentials | None = None,
    dest: Path,
    log: Callable[[str], None],
    timeout: float = GIT_TIMEOUT,
    allowed_hosts: Iterable[str] = (),
) -> FetchedSource:
    """Clone the tip of ``branch`` (default: the remote's default branch) of ``remote`` into
    ``dest``, one commit deep, and return the job directory ``directory`` inside it.

    ``dest`` must not exist or be empty; on failure it is left as it was found. Credentials
    written into an http(s) URL (``https://user:token@host/...``) are taken out of it and used
    like ``credentials``. A remote on a loopback or private address is refused unless
    ``allowed_hosts`` (the entries of ``source_allowed_hosts``) names it. Raises
    :class:`SourceError` with a message for the user.
    """
    remote, url_credentials = split_credentials(remote)
    credentials = credentials or url_credentials
    check_remote(remote)
    addresses = check_remote_host(remote, allowed_hosts)
    check_branch(branch)
    relative = check_directory(directory)
    if credentials is not None and any(c in value for value in credentials for c in "\n\0"):
        raise SourceError("git credentials must not contain a newline or a NUL character")
    secrets = _secret_forms(credentials)
    created = _prepare_dest(dest)
    target = f"branch '{branch}'" if branch else "the default branch"
    try:
        log(f"Cloning {target} of {remote} (one commit)")
        if credentials is not None and not remote.startswith(("https://", "http://")):
            log("Warning: git credentials apply to http(s) remotes only; they are not used")
        if credentials is not None and remote.startswith("http://"):
            log("Warning: sending git credentials over plain http; use an https:// remote")
        args = ["clone", "--depth", "1", "--single-branch", "--no-tags"]
        args += ["--branch", branch] if branch else []
        args += ["--", remote, str(dest)]
        env = _git_env(remote, credentials, addresses)
        returncode, stderr = _run_git(args, env, timeout, remote)
        stderr = scrub(stderr, secrets)
        for line in stderr.splitlines():
            if line.strip():
                log(f"git: {line.rstrip()}")
        if returncode != 0:
            raise _clone_failure(stderr, remote, branch, credentials is not None)
        returncode, commit = _run_git(
            ["-C", str(dest), "rev-parse", "--verify", "--quiet", "HEAD"],
            _git_env(remote, None, ()),
            timeout,
            remote,
            capture="stdout",
        )
        if returncode != 0:
            raise SourceError(f"git repository {remote} has no commits on {target}")
        commit = commit.strip()
        path = _job_directory(dest, relative, directory, f"{remote} at commit {commit[:12]}")
        log(f"Fetched commit {commit} of {remote}")
        return FetchedSource(path=path, commit=commit)
    except BaseException:
        _clear(dest, created)
        raise


def _job_directory(root: Path, relative: PurePosixPath, directory: str, where: str) -> Path:
    field = f"manifest field 'git.directory': {directory!r}"
    real_root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(real_root):
        raise SourceError(f"{field} leads outside the repository through a symbolic link")
    if path.is_relative_to(real_root / ".git"):
        raise SourceError(f"{field} leads into git's own .git directory")
    if not path.exists():
        raise SourceError(f"{field} does not exist in {where}")
    if not path.is_dir():
        raise SourceError(f"{field} is a file in {where}, not a directory")
    return path


# -- running git -----------------------------------------------------------------------------


def _git_env(
    remote: str, credentials: Credentials | None, addresses: Sequence[str]
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _REPOSITORY_ENV
        and not key.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",  # a missing credential fails instead of waiting for a tty
            "GIT_ASKPASS": "",  # empty: no askpass program, and core.askPass is not consulted
            "GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS),  # also guards redirects
            "GIT_TRACE_REDACT": "1",
            "LC_ALL": "C",  # git's messages in English, so that failures can be recognised
            "LANGUAGE": "C",
        }
    )
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    # An empty credential.helper empties the list of helpers from the server's own git config,
    # so that no helper stores the token (credential.helper=store) or offers another one.
    config = [("credential.helper", ""), ("http.followRedirects", "false")]
    pin = _resolve_pin(remote, addresses)
    if pin:
        config.append(("http.curloptResolve", pin))
    if credentials is not None:
        parts = urlsplit(remote)
        config.append((f"credential.{parts.scheme}://{parts.netloc}.helper", _CREDENTIAL_HELPER))
        env[_USERNAME_VAR], env[_PASSWORD_VAR] = credentials
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _resolve_pin(remote: str, addresses: Sequence[str]) -> str:
    """curl's ``HOST:PORT:ADDRESS,...`` entry that makes an http(s) clone connect to the checked
    addresses only; empty for other transports, an address as host, or nothing checked."""
    parts = urlsplit(remote)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not addresses or ":" in host:
        return ""
    if host.replace(".", "").isdigit():
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = ",".join(f"[{address}]" if ":" in address else address for address in addresses)
    return f"{host}:{port}:{shown}"


def _run_git(
    args: list[str], env: dict[str, str], timeout: float, remote: str, capture: str = "stderr"
) -> tuple[int, str]:
    """Run git in its own process group; on timeout kill the group (git and its helpers)."""
    try:
        process = subprocess.Popen(
            ["git", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise SourceError("git is not installed on the Racetrack server: install git") from None
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise SourceError(
                f"cloning {remote} timed out after {timeout:g} s: check that the git server "
                "answers from the Racetrack server, or that the repository is not too large"
            ) from None
        except BaseException:
            _kill_group(process)
            process.communicate()
            raise
    return process.returncode, stdout if capture == "stdout" else stderr


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group ended on its own
        os.killpg(process.pid, signal.SIGKILL)


def _clone_failure(
    stderr: str, remote: str, branch: str | None, had_credentials: bool
) -> SourceError:
    hint = f"racetrack set credentials {remote} USERNAME TOKEN"
    said = _last_fatal(stderr)
    if re.search(r"Remote branch .* not found|Could not find remote branch", stderr):
        return SourceError(
            f"branch '{branch}' was not found in git repository {remote}: "
            "check manifest field 'git.branch'"
        )
    if re.search(
        r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
        r"|HTTP Basic: Access denied|The requested URL returned error: 403"
        r"|Permission denied \(publickey",
        stderr,
    ):
        if had_credentials:
            return SourceError(
                f"authentication to git repository {remote} failed: the credentials were "
                f"refused. Check that the token is valid and may read the repository, then "
                f"update it with: {hint}"
            )
        return SourceError(
            f"git repository {remote} needs authentication and no credentials were given. "
            f"Give Racetrack read access with: {hint}"
        )
    if re.search(r"repository '.*' not found|does not appear to be a git repository", stderr):
        return SourceError(
            f"git repository {remote} was not found: check manifest field 'git.remote'. "
            f"If the repository is private, give Racetrack read access with: {hint}"
        )
    if re.search(r"returned error: 30[1278]|[Rr]edirect", stderr):
        return SourceError(
            f"git repository {remote} answered with a redirect, which Racetrack does not "
            "follow (it could lead to a private address): set manifest field 'git.remote' "
            "to the URL it redirects to"
        )
    if re.search(r"transport '.*' not allowed", stderr):
        return SourceError(f"git repository {remote} redirected to a transport that is not allowed")
    if re.search(r"Could not resolve host|Failed to connect|Connection refused|timed out", stderr):
        return SourceError(f"could not reach git repository {remote} ({said})")
    return SourceError(f"cloning git repository {remote} failed: {said}")


def _last_fatal(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or ["git gave no reason"])[-1]


def _secret_forms(credentials: Credentials | None) -> list[str]:
    """Every spelling of the password that git could echo: plain, URL-quoted, in a Basic header."""
    if credentials is None or not credentials[1]:
        return []
    username, password = credentials
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return sorted({password, quote(password, safe=""), basic}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret and each URL's ``user:password@`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_url_credentials(text)


# -- the destination directory ---------------------------------------------------------------


def _prepare_dest(dest: Path) -> bool:
    """Check that ``dest`` is free; return whether it is to be created (and so removed later)."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ValueError(f"clone destination {dest} exists and is not a directory")
    if dest.exists():
        if any(dest.iterdir()):
            raise ValueError(f"clone destination {dest} is not empty")
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    return True


def _clear(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir() if dest.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)

"""Secrets at rest: random tokens kept only as digests, argon2 password hashes, sealed secrets.

- A token is 32 random bytes (URL-safe text with an ``rt_`` prefix, so that secret scanners
  can spot a leaked one). Only its SHA-256 digest is stored: with that much randomness a fast
  digest cannot be brute-forced, and it lets a token be found by an indexed lookup.
- Passwords are hashed with argon2id (argon2-cffi's defaults) and checked in constant time.
- Deployment secrets (git credentials are never kept; runtime secrets and a job family's own
  token are) are sealed with Fernet under a key kept in a mode-600 file in the server's home,
  so that a restarted server can start jobs again without a secret ever sitting in a row in
  plain text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from racetrack_core.errors import RacetrackError

TOKEN_PREFIX = "rt_"  # noqa: S105 (a marker that scanners recognise, not a secret)
_hasher = PasswordHasher()


def new_token() -> str:
    """A new random token, to be shown once and stored only as ``token_digest(token)``."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """The last characters of a token, enough for a person to tell their tokens apart."""
    return "…" + token[-4:]


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong password or a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A generated password for the first admin account: 24 URL-safe characters."""
    return secrets.token_urlsafe(18)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (mode 600), created that way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)


class SecretsError(RacetrackError):
    """Sealed secrets could not be opened (the key file changed or the data is corrupt)."""


class SecretBox:
    """Seals and opens mappings of secrets with a Fernet key kept in ``key_file``."""

    def __init__(self, key_file: Path) -> None:
        if not key_file.exists():
            write_private_file(key_file, Fernet.generate_key().decode())
        try:
            self._fernet = Fernet(key_file.read_text().strip().encode())
        except ValueError:
            raise SecretsError(
                f"{key_file} holds no Fernet key (32 url-safe base64-encoded bytes); make one "
                "with: python3 -c 'import base64, os; "
                "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
            ) from None
        self._key_file = key_file

    def seal(self, values: Mapping[str, Mapping[str, str] | str]) -> str:
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, object]:
        if not sealed:
            return {}
        try:
            opened = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsError(
                f"stored job secrets cannot be opened with the key in {self._key_file}; "
                "was the key file replaced? Redeploy the job with its secrets"
            ) from None
        return dict(opened)

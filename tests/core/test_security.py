"""Tokens, password hashes, private files and sealed secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from racetrack_core.security import (
    SecretBox,
    SecretsError,
    hash_password,
    new_token,
    token_digest,
    verify_password,
    write_private_file,
)


def test_tokens_are_random_prefixed_and_digested() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert token.startswith("rt_")
    assert len(token) > 40
    assert token_digest(token) == token_digest(token)
    assert token not in token_digest(token)


def test_passwords_are_argon2_hashes_checked_without_raising() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not a hash", "correct horse")


def test_private_files_are_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secret"
    write_private_file(path, "value")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "value"


def test_sealed_secrets_open_with_the_same_key_only(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secret.key")
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    sealed = box.seal({"runtime_env": {"API_KEY": "abc123"}})
    assert "abc123" not in sealed
    assert SecretBox(tmp_path / "secret.key").open(sealed) == {"runtime_env": {"API_KEY": "abc123"}}
    assert box.open(None) == {}
    other = SecretBox(tmp_path / "other.key")
    with pytest.raises(SecretsError, match="cannot be opened"):
        other.open(sealed)


def test_a_key_file_without_a_fernet_key_is_refused_naming_it(tmp_path: Path) -> None:
    """A key given from outside (a Kubernetes Secret's placeholder left in) stops the start
    with a sentence that names the file and how to make a key, and is never replaced."""
    key_file = tmp_path / "secret.key"
    key_file.write_text("change-me-generate-a-key\n")
    with pytest.raises(SecretsError, match=r"secret\.key holds no Fernet key.*urandom\(32\)"):
        SecretBox(key_file)
    assert key_file.read_text() == "change-me-generate-a-key\n"

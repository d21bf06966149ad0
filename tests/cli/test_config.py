"""The client configuration: its file, remote resolution and git credential lookup."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from ruamel.yaml import YAML

from racetrack_cli import yaml_subset
from racetrack_cli.config import ClientConfig, git_lookup_keys, is_local, mask, resolve_url

RunCli = Callable[..., Result]

RACETRACK_CLIENT_FILE = """\
git_credentials:
  https://github.com:
    password: tok
    username: me@example.com
lifecycle_url: dev
lifecycle_url_aliases:
  dev: https://rt.dev.example.com/lifecycle
user_auths:
  https://rt.dev.example.com/lifecycle: eyJhbGciOi.token
"""


@pytest.mark.parametrize(
    ("remote", "resolved"),
    [
        ("http://127.0.0.1:7102", "http://127.0.0.1:7102/lifecycle"),
        ("http://127.0.0.1:7102/", "http://127.0.0.1:7102/lifecycle"),
        ("racetrack.example.com", "https://racetrack.example.com/lifecycle"),
        ("racetrack.example.com:12345/lifecycle", "https://racetrack.example.com:12345/lifecycle"),
        ("http://host:1/custom/path/", "http://host:1/custom/path"),
        ("dev", "https://rt.dev.example.com/lifecycle"),
        ("kind", "http://127.0.0.1:7002/lifecycle"),
    ],
)
def test_a_remote_resolves_to_a_lifecycle_url(remote: str, resolved: str) -> None:
    aliases = {"dev": "https://rt.dev.example.com/lifecycle", "kind": "http://127.0.0.1:7002"}
    assert resolve_url(remote, aliases) == resolved


def test_the_default_remote_is_this_projects_local_server(config_dir: Path) -> None:
    assert ClientConfig.load().resolve() == "http://127.0.0.1:7102/lifecycle"
    assert not config_dir.exists()


def test_local_remotes() -> None:
    assert is_local("http://127.0.0.1:7102/lifecycle")
    assert is_local("http://localhost/lifecycle")
    assert not is_local("https://racetrack.example.com/lifecycle")


def test_git_credentials_are_looked_up_from_the_most_specific_key() -> None:
    assert git_lookup_keys("https://github.com/org/repo.git") == [
        "https://github.com/org/repo.git",
        "https://github.com/org/repo",
        "https://github.com/org",
        "https://github.com",
        "github.com",
    ]
    config = ClientConfig(
        git_credentials={
            "github.com": {"username": "host", "password": "1"},
            "https://github.com/org": {"username": "org", "password": "2"},
        }
    )
    found = config.find_git_credentials("https://github.com/org/repo")
    assert found == {"username": "org", "password": "2"}
    other = config.find_git_credentials("https://github.com/else/repo")
    assert other == {"username": "host", "password": "1"}
    assert config.find_git_credentials("https://gitlab.com/org/repo") is None


def test_the_file_is_written_for_its_owner_only_and_read_back(config_dir: Path) -> None:
    config = ClientConfig.load()
    config.lifecycle_url = "http://127.0.0.1:7102"
    config.user_auths["http://127.0.0.1:7102/lifecycle"] = "rt_token"
    config.git_credentials["https://github.com"] = {"username": "me", "password": "p#ss: w"}
    config.save()
    path = config_dir / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ClientConfig.load()
    assert again.as_dict() == config.as_dict()
    # Any YAML parser (racetrack-client uses PyYAML) reads the same thing.
    assert YAML(typ="safe", pure=True).load(path.read_text()) == config.as_dict()


def test_a_file_written_by_racetrack_client_is_read(config_dir: Path) -> None:
    config_dir.mkdir()
    path = config_dir / "config.yaml"
    path.write_text(RACETRACK_CLIENT_FILE)
    path.chmod(0o600)
    config = ClientConfig.load()
    assert config.resolve() == "https://rt.dev.example.com/lifecycle"
    assert config.token(config.resolve()) == "eyJhbGciOi.token"
    assert config.find_git_credentials("https://github.com/x/y") == {
        "username": "me@example.com",
        "password": "tok",
    }


def test_a_file_others_can_read_gives_a_warning(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir.mkdir()
    path = config_dir / "config.yaml"
    path.write_text("lifecycle_url: http://127.0.0.1:7102\n")
    path.chmod(0o644)
    ClientConfig.load()
    assert f"can be read by other users (mode 644) and holds tokens: run chmod 600 {path}" in (
        capsys.readouterr().err
    )


def test_a_broken_file_is_one_line(config_dir: Path, run_cli: RunCli) -> None:
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text("lifecycle_url: [oops\n")
    (config_dir / "config.yaml").chmod(0o600)
    result = run_cli("get", "remote")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {config_dir / 'config.yaml'} is not valid YAML:")
    assert line.endswith("fix or remove it")


def test_secrets_are_masked() -> None:
    assert mask("rt_abcdefghijklmnopqrstuvwxyz") == "********wxyz"
    assert mask("short") == "********"


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n",
        "a: [1, 2]\n",
        "a: {b: c}\n",
        "a: yes\n",
        "a: b # comment\n",
        "a: |\n  text\n",
        "a:\n  - x\n",
        "'it''s': \"x\\ty\"\n",
        "a:\nb:\n  c: d\n",
        "a:\n    b: c\n    d:\n      e: f\n  g: h\n",
        "a: b\na: c\n",
        "a:\tb\n",
        "",
        "# only a comment\n",
    ],
)
def test_the_yaml_subset_reads_what_a_yaml_parser_reads(text: str) -> None:
    try:
        expected = YAML(typ="safe", pure=True).load(text)
    except Exception:
        with pytest.raises(ValueError, match=r"\(line \d+, column \d+\)"):
            yaml_subset.load(text)
        return
    assert yaml_subset.load(text) == expected

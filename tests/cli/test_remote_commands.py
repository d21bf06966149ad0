"""``racetrack set|get ...``, ``login`` and ``logout``, against a stand-in Lifecycle."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from racetrack_cli.config import ClientConfig

from .fake_lifecycle import FakeLifecycle, fake_lifecycle

RunCli = Callable[..., Result]
TOKEN = "rt_0123456789abcdefghij"
USER = {"username": "admin", "token": TOKEN, "is_staff": True}


@pytest.fixture
def lifecycle() -> Iterator[FakeLifecycle]:
    with fake_lifecycle() as fake:
        yield fake


def test_set_remote_then_get_remote(run_cli: RunCli, config_dir: Path) -> None:
    result = run_cli("set", "remote", "http://127.0.0.1:7102")
    assert result.exit_code == 0
    assert result.stderr == "current remote: http://127.0.0.1:7102/lifecycle\n"
    assert stat.S_IMODE((config_dir / "config.yaml").stat().st_mode) == 0o600
    assert run_cli("get", "remote").stdout == "http://127.0.0.1:7102/lifecycle\n"
    assert ClientConfig.load().lifecycle_url == "http://127.0.0.1:7102"


def test_set_alias_and_use_it_as_the_remote(run_cli: RunCli) -> None:
    assert run_cli("set", "alias", "prod", "rt.example.com").exit_code == 0
    assert run_cli("set", "remote", "prod").exit_code == 0
    assert run_cli("get", "remote").stdout == "https://rt.example.com/lifecycle\n"


def test_an_alias_that_looks_like_a_url_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("set", "alias", "http://x", "http://y")
    assert result.exit_code == 2
    assert "an alias is a short name" in result.stderr


def test_set_credentials_and_get_config_masks_them(run_cli: RunCli) -> None:
    result = run_cli("set", "credentials", "https://github.com/", "me", "ghp_secret_token_1234")
    assert result.exit_code == 0
    assert ClientConfig.load().git_credentials == {
        "https://github.com": {"username": "me", "password": "ghp_secret_token_1234"}
    }
    shown = run_cli("get", "config")
    assert shown.exit_code == 0
    assert "ghp_secret" not in shown.stdout
    assert "********1234" in shown.stdout
    assert "username: me" in shown.stdout


def test_get_auth_token_needs_a_login(run_cli: RunCli) -> None:
    result = run_cli("get", "auth-token")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: not logged in to http://127.0.0.1:7102/lifecycle: "
        "run racetrack login --username <you>\n"
    )
    assert result.stdout == ""


def test_a_remote_option_is_repeated_in_the_hint(run_cli: RunCli) -> None:
    result = run_cli("get", "auth-token", "--remote", "http://127.0.0.1:9")
    assert result.stderr.endswith(
        "run racetrack login --username <you> --remote http://127.0.0.1:9\n"
    )


def test_an_unreachable_lifecycle_is_one_line(run_cli: RunCli) -> None:
    result = run_cli("get", "pub", "--remote", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot reach Lifecycle at http://127.0.0.1:9/lifecycle: is racetrack up running?\n"
    )


def test_login_with_a_password_on_stdin(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("POST", "/lifecycle/api/v1/users/login", (200, USER))
    result = run_cli("login", "--username", "admin", "--remote", lifecycle.url, input="pass word\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        f"logged in to {lifecycle.url} as admin (staff)\ncurrent remote is now {lifecycle.url}\n"
    )
    # With no login for the former current remote, the remote logged in to becomes current.
    assert ClientConfig.load().lifecycle_url == lifecycle.url
    [seen] = lifecycle.seen
    assert seen.body == b'{"username":"admin","password":"pass word"}'
    assert ClientConfig.load().user_auths == {lifecycle.url: TOKEN}


def test_login_keeps_a_current_remote_that_has_a_login(
    run_cli: RunCli, lifecycle: FakeLifecycle
) -> None:
    config = ClientConfig.load()
    config.user_auths["http://127.0.0.1:7102/lifecycle"] = TOKEN
    config.save()
    lifecycle.answer("POST", "/lifecycle/api/v1/users/login", (200, USER))
    result = run_cli("login", "--username", "admin", "--remote", lifecycle.url, input="pass word\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "the current remote stays http://127.0.0.1:7102/lifecycle; to use this one by default: "
        f"racetrack set remote {lifecycle.url}"
    )
    assert ClientConfig.load().resolve() == "http://127.0.0.1:7102/lifecycle"
    assert "http://127.0.0.1:7102/lifecycle" in ClientConfig.load().user_auths
    assert run_cli("get", "auth-token", "--remote", lifecycle.url).stdout == f"{TOKEN}\n"


def test_login_with_a_wrong_password(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    refused = {"error": "incorrect username or password", "type": "Unauthenticated"}
    lifecycle.answer("POST", "/lifecycle/api/v1/users/login", (401, refused))
    result = run_cli("login", "-u", "admin", "--remote", lifecycle.url, input="nope\n")
    assert result.exit_code == 1
    assert result.stderr == f"Error: incorrect username or password ({lifecycle.url})\n"
    assert ClientConfig.load().user_auths == {}


def test_login_without_a_password_on_stdin(run_cli: RunCli) -> None:
    result = run_cli("login", "-u", "admin", input="")
    assert result.exit_code == 2
    assert "no password on standard input" in result.stderr


def test_login_with_a_token(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", "/lifecycle/api/v1/users/validate_user_auth", (200, USER))
    result = run_cli("login", TOKEN, "--remote", lifecycle.url)
    assert result.exit_code == 0, result.stderr
    [seen] = lifecycle.seen
    assert seen.headers["X-Racetrack-Auth"] == TOKEN
    assert ClientConfig.load().user_auths == {lifecycle.url: TOKEN}


def test_login_with_an_invalid_token(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    refused = {"error": "wrong credentials: the token is unknown", "type": "Unauthenticated"}
    lifecycle.answer("GET", "/lifecycle/api/v1/users/validate_user_auth", (401, refused))
    result = run_cli("login", "bogus", "--remote", lifecycle.url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: invalid auth token for {lifecycle.url}: copy it")
    assert ClientConfig.load().user_auths == {}


@pytest.mark.parametrize("args", [(), ("tok", "--username", "admin")])
def test_login_needs_a_token_or_a_username(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli("login", *args)
    assert result.exit_code == 2
    assert "give either a TOKEN or --username USERNAME" in result.stderr


def test_logout_forgets_the_token(run_cli: RunCli) -> None:
    config = ClientConfig.load()
    config.user_auths["http://127.0.0.1:7102/lifecycle"] = TOKEN
    config.user_auths["https://other.example.com/lifecycle"] = "other"
    config.save()
    result = run_cli("logout")
    assert result.stderr == "logged out of http://127.0.0.1:7102/lifecycle\n"
    assert ClientConfig.load().user_auths == {"https://other.example.com/lifecycle": "other"}
    again = run_cli("logout")
    assert again.exit_code == 0
    assert "not logged in to http://127.0.0.1:7102/lifecycle: nothing to do" in again.stderr


def test_get_pub(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    info = {"service": "lifecycle", "external_pub_url": "http://127.0.0.1:7105/pub"}
    lifecycle.answer("GET", "/lifecycle/api/v1/info", (200, info))
    result = run_cli("get", "pub", "--remote", lifecycle.url)
    assert result.stdout == "http://127.0.0.1:7105/pub\n"


def test_something_that_is_not_lifecycle(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", "/lifecycle/api/v1/info", (404, "<html>Not Found</html>"))
    result = run_cli("get", "pub", "--remote", lifecycle.url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {lifecycle.url} does not look like a Racetrack Lifecycle API "
        "(GET /lifecycle/api/v1/info answered 404): check the remote with racetrack get remote\n"
    )


def test_a_server_error_without_a_sentence(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", "/lifecycle/api/v1/info", (502, "<html>Bad Gateway</html>"))
    result = run_cli("get", "pub", "--remote", lifecycle.url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Lifecycle at {lifecycle.url} answered 502 to GET /lifecycle/api/v1/info\n"
    )


def test_completion_scripts(run_cli: RunCli) -> None:
    for shell, marker in [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete")]:
        result = run_cli("completion", shell)
        assert result.exit_code == 0
        assert marker in result.stdout
        assert "_RACETRACK_COMPLETE" in result.stdout
    assert run_cli("completion", "tcsh").exit_code == 2


def test_tls_is_set_up_only_for_https() -> None:
    from racetrack_cli.client import needs_tls

    assert needs_tls("https://racetrack.example.com/lifecycle")
    assert not needs_tls("http://127.0.0.1:7102/lifecycle")

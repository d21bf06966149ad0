"""Callers and the plugins' say in authentication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from racetrack_core import PluginManager, hookimpl
from racetrack_core.auth import AuthenticationError, Caller, authenticate_with_plugins
from racetrack_core.testing.plugin import RegisterPlugin


class FakeRequest:
    """The three attributes RequestLike asks for, as a Starlette request has them."""

    def __init__(
        self, headers: Mapping[str, str] | None = None, cookies: Mapping[str, str] | None = None
    ) -> None:
        self.headers: Mapping[str, str] = headers or {}
        self.cookies: Mapping[str, str] = cookies or {}
        self.url = "http://127.0.0.1:7102/api/v1/job"


@pytest.mark.parametrize(
    ("caller", "label"),
    [
        (Caller(kind="user", name="admin"), "User admin"),
        (Caller(kind="esc", name="billing"), "ESC billing"),
        (Caller(kind="job_family", name="adder"), "Job family adder"),
        (Caller(kind="internal", name="pub"), "Internal pub"),
    ],
)
def test_caller_label(caller: Caller, label: str) -> None:
    assert caller.label == label


def test_caller_defaults_to_no_staff_and_no_scopes() -> None:
    caller = Caller(kind="user", name="alice@example.com")
    assert not caller.is_staff
    assert caller.scopes == frozenset()


def test_without_plugins_nobody_is_authenticated(racetrack_plugin_manager: PluginManager) -> None:
    assert authenticate_with_plugins(racetrack_plugin_manager, FakeRequest()) is None


def test_plugin_sees_headers_and_cookies(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class CookieAuth:
        @hookimpl
        def authenticate_request(self, request: Any) -> Caller | None:
            token = request.headers.get("X-Racetrack-Auth") or request.cookies.get(
                "X-Racetrack-Auth"
            )
            return Caller(kind="esc", name="sso") if token == "sso-ticket" else None

    racetrack_register_plugin(CookieAuth(), "cookie-auth")
    by_cookie = FakeRequest(cookies={"X-Racetrack-Auth": "sso-ticket"})
    by_header = FakeRequest(headers={"X-Racetrack-Auth": "sso-ticket"})
    assert authenticate_with_plugins(racetrack_plugin_manager, by_cookie) == Caller(
        kind="esc", name="sso"
    )
    assert authenticate_with_plugins(racetrack_plugin_manager, by_header) == Caller(
        kind="esc", name="sso"
    )
    assert authenticate_with_plugins(racetrack_plugin_manager, FakeRequest()) is None


def test_answer_that_is_not_a_caller_is_refused(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Sloppy:
        @hookimpl
        def authenticate_request(self) -> str:
            return "admin"

    racetrack_register_plugin(Sloppy(), "sloppy")
    with pytest.raises(AuthenticationError) as caught:
        authenticate_with_plugins(racetrack_plugin_manager, FakeRequest())
    assert str(caught.value) == "a plugin's authenticate_request returned str, not a Caller"


def test_plugin_refusal_names_the_plugin_and_stays_an_authentication_error(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Revoked:
        @hookimpl
        def authenticate_request(self, request: Any) -> None:
            raise AuthenticationError("token revoked")

    racetrack_register_plugin(Revoked(), "revoked")
    with pytest.raises(AuthenticationError) as caught:
        authenticate_with_plugins(
            racetrack_plugin_manager, FakeRequest({"X-Racetrack-Auth": "t0k"})
        )
    assert str(caught.value) == "plugin 'revoked' refused the request: token revoked"
    assert "t0k" not in str(caught.value)

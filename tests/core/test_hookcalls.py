"""Hook wrappers: supported where Racetrack calls a hook as one call, refused elsewhere."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import pytest

from racetrack_core import PluginManager, hookimpl
from racetrack_core.auth import Caller, authenticate_with_plugins
from racetrack_core.errors import PluginError
from racetrack_core.hookcalls import WRAPPABLE_HOOKS
from racetrack_core.registry import JobTypeRegistrar
from racetrack_core.testing.plugin import RegisterPlugin


class FakeRequest:
    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self.headers: Mapping[str, str] = headers or {}
        self.cookies: Mapping[str, str] = {}
        self.url = "http://127.0.0.1:7102/api/v1/job"


class WrapsRegistration:
    @hookimpl(wrapper=True)
    def register_job_types(self, registry: JobTypeRegistrar) -> Generator[None, None, None]:
        yield


class OldStyleWrapsDeletion:
    @hookimpl(hookwrapper=True)
    def after_job_delete(self) -> Generator[None, Any, None]:
        yield


@pytest.mark.parametrize(
    ("plugin", "hook"),
    [(WrapsRegistration(), "register_job_types"), (OldStyleWrapsDeletion(), "after_job_delete")],
)
def test_a_wrapper_of_a_hook_called_plugin_by_plugin_is_refused(
    racetrack_plugin_manager: PluginManager,
    racetrack_register_plugin: RegisterPlugin,
    plugin: object,
    hook: str,
) -> None:
    with pytest.raises(PluginError) as caught:
        racetrack_register_plugin(plugin, "wrapping")
    assert str(caught.value) == (
        f"plugin 'wrapping' implements hook '{hook}' as a wrapper, but Racetrack calls that "
        "hook plugin by plugin, where a wrapper would never run: make it a plain @hookimpl "
        "(wrappers are supported only on authenticate_request)"
    )
    assert "wrapping" not in racetrack_plugin_manager.names()
    assert racetrack_plugin_manager.get("wrapping") is None
    assert racetrack_plugin_manager.job_types.names()  # the built-ins still register


def test_only_authenticate_request_may_be_wrapped() -> None:
    assert frozenset({"authenticate_request"}) == WRAPPABLE_HOOKS


class Everyone:
    @hookimpl(trylast=True)
    def authenticate_request(self) -> Caller | None:
        return Caller(kind="esc", name="everyone")


class StaffOnFriday:
    """A cross-cutting wrapper: sees every plugin's answer, and may change it."""

    def __init__(self) -> None:
        self.seen: list[Caller | None] = []

    @hookimpl(wrapper=True)
    def authenticate_request(self, request: Any) -> Generator[None, Caller | None, Caller | None]:
        caller = yield
        self.seen.append(caller)
        if caller is not None and request.headers.get("X-Day") == "friday":
            return Caller(kind=caller.kind, name=caller.name, is_staff=True)
        return caller


def test_a_wrapper_of_authenticate_request_runs_around_the_other_plugins(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    wrapper = StaffOnFriday()
    racetrack_register_plugin(Everyone(), "everyone")
    racetrack_register_plugin(wrapper, "friday")
    friday = authenticate_with_plugins(racetrack_plugin_manager, FakeRequest({"X-Day": "friday"}))
    monday = authenticate_with_plugins(racetrack_plugin_manager, FakeRequest({"X-Day": "monday"}))
    assert friday == Caller(kind="esc", name="everyone", is_staff=True)
    assert monday == Caller(kind="esc", name="everyone")
    assert wrapper.seen == [monday, monday]


class OldStyleCounter:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(hookwrapper=True)
    def authenticate_request(self) -> Generator[None, Any, None]:
        self.calls += 1
        yield


def test_an_old_style_hookwrapper_runs_too(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    counter = OldStyleCounter()
    racetrack_register_plugin(counter, "counter")
    racetrack_register_plugin(Everyone(), "everyone")
    assert authenticate_with_plugins(racetrack_plugin_manager, FakeRequest()) is not None
    assert counter.calls == 1


class BrokenWrapper:
    @hookimpl(wrapper=True)
    def authenticate_request(self) -> Generator[None, Caller | None, Caller | None]:
        caller = yield
        raise KeyError(f"no team for {caller}")


def test_a_failing_wrapper_is_named(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(BrokenWrapper(), "broken")
    with pytest.raises(PluginError) as caught:
        authenticate_with_plugins(racetrack_plugin_manager, FakeRequest())
    assert str(caught.value) == (
        "plugin 'broken' failed in hook 'authenticate_request': KeyError: 'no team for None'"
    )
    assert isinstance(caught.value.__cause__, KeyError)


class Exploding:
    @hookimpl
    def authenticate_request(self) -> Caller | None:
        raise ValueError("ticket server down")


def test_a_failure_inside_passes_through_a_wrapper_naming_its_own_plugin(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(Exploding(), "sso")
    racetrack_register_plugin(StaffOnFriday(), "friday")
    with pytest.raises(PluginError) as caught:
        authenticate_with_plugins(racetrack_plugin_manager, FakeRequest())
    assert str(caught.value) == (
        "plugin 'sso' failed in hook 'authenticate_request': ValueError: ticket server down"
    )

"""The plugin manager: discovery, loading once, blocking, tracing, errors and description."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import importlib_metadata
import pytest

import racetrack_core
from racetrack_core import PluginManager, hookimpl
from racetrack_core.errors import ManifestError, PluginError, RegistrationError
from racetrack_core.recipes import ArtifactKind
from racetrack_core.registry import InfrastructureRegistrar, JobTypeRegistrar
from racetrack_core.testing.plugin import RegisterPlugin
from racetrack_plugins.local_infra import LocalDriver

pytest_plugins = ["pytester"]

BUILTINS = {"python3", "golang", "docker-proxy"}


class AnvilPlugin:
    """A plugin with a job type and an infrastructure target."""

    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register("anvil", "1.0.0")
        registry.register("anvil", "1.1.0")

    @hookimpl
    def register_infrastructure_targets(self, registry: InfrastructureRegistrar) -> None:
        registry.register("forge", LocalDriver, accepts={ArtifactKind.PROCESS})


class TypoPlugin:
    @hookimpl
    def register_job_type(self, registry: JobTypeRegistrar) -> None:
        """Misspelt: the hook is register_job_types."""


def test_importing_the_package_loads_no_plugin() -> None:
    manager = PluginManager(environ={})
    assert not manager.loaded
    assert manager.names() == []


def test_entry_points_find_the_builtins(racetrack_plugin_manager: PluginManager) -> None:
    assert racetrack_plugin_manager.loaded
    assert set(racetrack_plugin_manager.names()) >= BUILTINS
    infos = {info.name: info for info in racetrack_plugin_manager.describe()}
    for name in BUILTINS:
        assert infos[name].builtin, name
        assert infos[name].distribution == "racetrack-platform"
        assert infos[name].version == racetrack_core.__version__
    assert set(racetrack_plugin_manager.job_types.names()) >= BUILTINS


def test_load_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_entry_points = importlib_metadata.entry_points

    def counting_entry_points(**kwargs: Any) -> importlib_metadata.EntryPoints:
        calls.append(kwargs["group"])
        return real_entry_points(**kwargs)

    monkeypatch.setattr(importlib_metadata, "entry_points", counting_entry_points)
    manager = PluginManager(environ={})
    assert manager.load() is manager
    names = manager.names()
    assert manager.load() is manager
    assert calls == ["racetrack.plugins"]
    assert manager.names() == names


def test_disable_plugins_blocks_by_name_and_warns_about_unknown_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="racetrack.plugins")
    manager = PluginManager(environ={"RACETRACK_DISABLE_PLUGINS": "golang, no-such-plugin"})
    manager.load()
    assert "golang" not in manager.names()
    assert {"python3", "docker-proxy"} <= set(manager.names())
    assert "golang" not in manager.job_types.names()
    assert manager.disabled == {"golang", "no-such-plugin"}
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "plugin golang is disabled by RACETRACK_DISABLE_PLUGINS") in records
    warnings = [message for level, message in records if level == "WARNING"]
    assert warnings == [
        "RACETRACK_DISABLE_PLUGINS names 'no-such-plugin', which is not an installed plugin"
    ]


def test_disabled_plugin_cannot_be_registered_in_code_either() -> None:
    manager = PluginManager(environ={"RACETRACK_DISABLE_PLUGINS": "anvil"}).load()
    assert manager.register(AnvilPlugin(), "anvil") == "anvil"
    assert "anvil" not in manager.names()
    assert "anvil" not in manager.job_types.names()


class SecretReader:
    @hookimpl
    def authenticate_request(self, request: Any) -> None:
        assert request.headers["X-Racetrack-Auth"] == "s3cr3t-t0ken-value"


class FakeRequest:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.cookies: Mapping[str, str] = {}
        self.url = "http://127.0.0.1:7105/pub/job/adder/latest/perform"


def test_trace_logs_hook_calls_without_argument_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="racetrack.plugins")
    manager = PluginManager(environ={"RACETRACK_TRACE_PLUGINS": "1"}).load()
    manager.register(SecretReader(), "secret-reader")
    caplog.clear()
    manager.hook.authenticate_request(
        request=FakeRequest({"X-Racetrack-Auth": "s3cr3t-t0ken-value"})
    )
    messages = [r.getMessage() for r in caplog.records if r.name == "racetrack.plugins"]
    assert messages[0] == "hook authenticate_request(request) -> secret-reader"
    assert messages[1].startswith("hook authenticate_request done in ")
    assert messages[1].endswith(" ms")
    assert "s3cr3t" not in caplog.text


def test_trace_says_when_a_hook_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="racetrack.plugins")
    manager = PluginManager(environ={"RACETRACK_TRACE_PLUGINS": "1"}).load()
    manager.register(SecretReader(), "secret-reader")
    with pytest.raises(PluginError):
        manager.hook.authenticate_request(request=FakeRequest({"X-Racetrack-Auth": "wrong"}))
    messages = [r.getMessage() for r in caplog.records if r.name == "racetrack.plugins"]
    assert any(m.startswith("hook authenticate_request failed in ") for m in messages)


def test_trace_covers_the_registration_hooks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="racetrack.plugins")
    manager = PluginManager(environ={"RACETRACK_TRACE_PLUGINS": "1"}).load()
    assert "python3" in manager.job_types.names()
    assert any("register_job_types" in r.getMessage() for r in caplog.records)


def test_no_trace_without_the_variable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="racetrack.plugins")
    manager = PluginManager(environ={"RACETRACK_TRACE_PLUGINS": "0"}).load()
    manager.register(SecretReader(), "secret-reader")
    caplog.clear()
    manager.hook.authenticate_request(
        request=FakeRequest({"X-Racetrack-Auth": "s3cr3t-t0ken-value"})
    )
    assert caplog.records == []


class Exploding:
    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        raise RuntimeError("kaput")


def test_failing_hook_is_re_raised_naming_plugin_and_hook(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(Exploding(), "exploding")
    with pytest.raises(PluginError) as caught:
        racetrack_plugin_manager.job_types  # noqa: B018
    assert str(caught.value) == (
        "plugin 'exploding' failed in hook 'register_job_types': RuntimeError: kaput"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_failing_hook_through_the_hook_relay_names_plugin_and_hook(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Broken:
        @hookimpl
        def manifest_schema_fragments(self) -> None:
            raise KeyError("monitoring")

    racetrack_register_plugin(Broken(), "broken")
    with pytest.raises(PluginError) as caught:
        racetrack_plugin_manager.hook.manifest_schema_fragments()
    assert str(caught.value) == (
        "plugin 'broken' failed in hook 'manifest_schema_fragments': KeyError: 'monitoring'"
    )


def test_registration_error_already_naming_the_plugin_is_not_wrapped_again(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Impostor:
        @hookimpl
        def register_job_types(self, registry: JobTypeRegistrar) -> None:
            registry.register("python3", "1.0.0")

    racetrack_register_plugin(Impostor(), "impostor")
    with pytest.raises(RegistrationError) as caught:
        racetrack_plugin_manager.job_types  # noqa: B018
    # Plugins registered later are called first, so the built-in is the one that collides.
    assert str(caught.value) == (
        "plugin 'python3' registered job type 'python3:1.0.0', which plugin 'impostor' already "
        "registered: uninstall one of them, or block it with RACETRACK_DISABLE_PLUGINS"
    )


def test_unknown_hook_fails_registration_after_load_naming_the_plugin() -> None:
    manager = PluginManager(environ={}).load()
    with pytest.raises(PluginError) as caught:
        manager.register(TypoPlugin(), "typo")
    assert "typo" not in manager.names()
    manager.check()  # the refused plugin left nothing behind
    message = str(caught.value)
    assert message.startswith("plugin 'typo' implements an unknown hook: ")
    assert "'register_job_type'" in message
    assert message.endswith("See docs/plugins.md for the hooks Racetrack offers")


def test_unknown_hook_fails_load_naming_the_plugin() -> None:
    manager = PluginManager(environ={})
    manager.register(TypoPlugin(), "typo")
    with pytest.raises(PluginError, match=r"^plugin 'typo' implements an unknown hook: "):
        manager.load()
    assert not manager.loaded


def test_hook_with_an_argument_the_spec_lacks_is_refused_at_registration() -> None:
    class WrongArgument:
        @hookimpl
        def after_job_delete(self, job: Any, reason: str) -> None:
            """``reason`` is not an argument of after_job_delete."""

    manager = PluginManager(environ={})
    with pytest.raises(
        PluginError, match=r"^plugin 'wrong-argument' is not a valid Racetrack plugin: "
    ):
        manager.register(WrongArgument(), "wrong-argument")
    assert manager.names() == []


def test_registering_two_plugins_under_one_name_fails() -> None:
    manager = PluginManager(environ={})
    manager.register(AnvilPlugin(), "anvil")
    with pytest.raises(PluginError, match=r"^plugin 'anvil' could not be registered: "):
        manager.register(AnvilPlugin(), "anvil")


def test_describe_lists_hooks_job_types_and_targets_per_plugin(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(AnvilPlugin(), "anvil")
    infos = {info.name: info for info in racetrack_plugin_manager.describe()}
    anvil = infos["anvil"]
    assert anvil.hooks == ["register_infrastructure_targets", "register_job_types"]
    assert anvil.job_types == ["anvil:1.0.0", "anvil:1.1.0"]
    assert anvil.infrastructure_targets == ["forge"]
    assert not anvil.builtin
    assert anvil.distribution is None
    assert anvil.version is None
    assert infos["python3"].hooks == [
        "register_base_images",
        "register_job_types",
        "validate_manifest",
    ]
    assert infos["python3"].job_types == ["python3:1.0.0"]
    assert infos["golang"].infrastructure_targets == []
    assert anvil.as_dict() == {
        "name": "anvil",
        "version": None,
        "distribution": None,
        "builtin": False,
        "hooks": ["register_infrastructure_targets", "register_job_types"],
        "job_types": ["anvil:1.0.0", "anvil:1.1.0"],
        "infrastructure_targets": ["forge"],
    }
    assert [
        info.name for info in racetrack_plugin_manager.describe()
    ] == racetrack_plugin_manager.names()


def test_registration_before_load_is_kept() -> None:
    manager = PluginManager(environ={})
    manager.register(AnvilPlugin(), "anvil")
    manager.load()
    assert "anvil" in manager.job_types.names()
    assert set(manager.names()) >= {"anvil", *BUILTINS}


def test_registration_after_load_rebuilds_the_registries() -> None:
    manager = PluginManager(environ={}).load()
    assert "anvil" not in manager.job_types.names()
    assert "forge" not in manager.infrastructure_targets.names()
    manager.register(AnvilPlugin(), "anvil")
    assert manager.job_types.resolve("anvil:1.x").version == "1.1.0"
    assert manager.infrastructure_targets.get("forge").plugin == "anvil"
    manager.unregister("anvil")
    assert "anvil" not in manager.job_types.names()
    assert "forge" not in manager.infrastructure_targets.names()
    assert manager.get("anvil") is None


def test_registry_is_built_once_until_plugins_change() -> None:
    manager = PluginManager(environ={}).load()
    assert manager.job_types is manager.job_types
    first = manager.job_types
    manager.register(AnvilPlugin(), "anvil")
    assert manager.job_types is not first


def test_implementations_follow_pluggy_call_order() -> None:
    class Early:
        @hookimpl(tryfirst=True)
        def after_job_delete(self) -> None: ...

    class Late:
        @hookimpl(trylast=True)
        def after_job_delete(self) -> None: ...

    class Plain:
        @hookimpl
        def after_job_delete(self) -> None: ...

    manager = PluginManager(environ={})
    manager.register(Late(), "late")
    manager.register(Plain(), "plain")
    manager.register(Early(), "early")
    assert [name for name, _ in manager.implementations("after_job_delete")] == [
        "early",
        "plain",
        "late",
    ]


def test_fixtures_register_for_one_test_and_clean_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from racetrack_core import hookimpl

        class Greeter:
            @hookimpl
            def register_job_types(self, registry):
                registry.register("greeter", "1.0.0")

        def test_registered(racetrack_plugin_manager, racetrack_register_plugin):
            assert racetrack_register_plugin(Greeter(), "greeter") == "greeter"
            assert racetrack_plugin_manager.job_types.resolve("greeter:1.x").ref == "greeter:1.0.0"
            test_registered.manager = racetrack_plugin_manager

        def test_unregistered_afterwards(racetrack_plugin_manager):
            assert test_registered.manager is not racetrack_plugin_manager
            assert "greeter" not in test_registered.manager.names()
            assert "greeter" not in test_registered.manager.job_types.names()
        """
    )
    # kmock's pytest plugin needs pytest-asyncio, which we do not install (pyproject's addopts).
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:kmock")
    result.assert_outcomes(passed=2)


def test_racetrack_error_from_a_hook_becomes_a_plugin_error_keeping_the_original(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Strict:
        @hookimpl
        def manifest_schema_fragments(self) -> None:
            raise ManifestError(["field 'monitoring': expected a mapping"])

    racetrack_register_plugin(Strict(), "strict")
    with pytest.raises(PluginError) as caught:
        racetrack_plugin_manager.hook.manifest_schema_fragments()
    assert str(caught.value) == (
        "plugin 'strict' failed in hook 'manifest_schema_fragments': "
        "manifest is not valid: field 'monitoring': expected a mapping"
    )
    original = caught.value.__cause__
    assert isinstance(original, ManifestError)
    assert original.problems == ["field 'monitoring': expected a mapping"]


def test_failed_load_leaves_nothing_registered_so_it_can_be_retried() -> None:
    manager = PluginManager(environ={})
    manager.register(TypoPlugin(), "typo")
    with pytest.raises(PluginError):
        manager.load()
    assert manager.names() == ["typo"]
    manager.unregister("typo")
    manager.load()
    assert {"python3", "golang", "docker-proxy"} <= set(manager.names())

"""The deployment events module: merging plugin environments and reporting after-hooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from racetrack_core import PluginManager, events, hookimpl
from racetrack_core.errors import NotFoundError, PluginError
from racetrack_core.registry import JobType
from racetrack_core.testing.plugin import RegisterPlugin

JOB_TYPE = JobType(name="python3", version="1.0.0", plugin="python3")
MANIFEST: Mapping[str, Any] = {
    "name": "adder",
    "owner_email": "a@example.com",
    "jobtype": "python3",
}
JOB: Mapping[str, Any] = {"name": "adder", "version": "1.0.0", "status": "running"}


def returning_env(value: Any) -> object:
    class Plugin:
        @hookimpl
        def job_runtime_env(self) -> Any:
            return value

    return Plugin()


def test_no_plugin_means_no_extra_environment() -> None:
    assert events.plugin_runtime_env(PluginManager(environ={}), MANIFEST, JOB_TYPE) == {}


def test_plugins_that_return_none_add_nothing(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(returning_env(None), "quiet")
    racetrack_register_plugin(returning_env({"A": "1"}), "loud")
    assert events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE) == {"A": "1"}


def test_implementation_receives_manifest_and_job_type(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Echo:
        @hookimpl
        def job_runtime_env(self, manifest: Mapping[str, Any], job_type: JobType) -> dict[str, str]:
            return {"JOB_LABEL": f"{manifest['name']} on {job_type.ref}"}

    racetrack_register_plugin(Echo(), "echo")
    result = events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)
    assert result == {"JOB_LABEL": "adder on python3:1.0.0"}


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            ["A=1"],
            "plugin 'bad-env' returned list from job_runtime_env; "
            "return a mapping of variable names to strings",
        ),
        (
            {"1ST": "x"},
            "plugin 'bad-env' returned the variable name '1ST' from job_runtime_env, "
            "which is not a valid environment variable name",
        ),
        (
            {"A-B": "x"},
            "plugin 'bad-env' returned the variable name 'A-B' from job_runtime_env, "
            "which is not a valid environment variable name",
        ),
        (
            {"": "x"},
            "plugin 'bad-env' returned the variable name '' from job_runtime_env, "
            "which is not a valid environment variable name",
        ),
        (
            {"JOB_PORT": "7000"},
            "plugin 'bad-env' tried to set JOB_PORT in job_runtime_env; Racetrack sets it itself",
        ),
        (
            {"THREADS": 4},
            "plugin 'bad-env' returned a int for THREADS from job_runtime_env; "
            "values must be strings",
        ),
        (
            {"DEBUG": None},
            "plugin 'bad-env' returned a NoneType for DEBUG from job_runtime_env; "
            "values must be strings",
        ),
    ],
)
def test_bad_environment_is_rejected_naming_the_plugin(
    racetrack_plugin_manager: PluginManager,
    racetrack_register_plugin: RegisterPlugin,
    returned: Any,
    message: str,
) -> None:
    racetrack_register_plugin(returning_env(returned), "bad-env")
    with pytest.raises(PluginError) as caught:
        events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)
    assert str(caught.value) == message


@pytest.mark.parametrize("name", sorted(events.RESERVED_ENV))
def test_every_reserved_name_is_refused(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin, name: str
) -> None:
    racetrack_register_plugin(returning_env({name: "x"}), "sneaky")
    with pytest.raises(
        PluginError, match=f"^plugin 'sneaky' tried to set {name} in job_runtime_env"
    ):
        events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)


def test_reserved_names_cover_the_runtime_contract() -> None:
    assert {
        "PUB_URL",
        "JOB_NAME",
        "JOB_VERSION",
        "JOB_PORT",
        "AUTH_TOKEN",
        "JOB_DEPLOYMENT_TIMESTAMP",
        "JOB_MANIFEST_YAML",
        "REQUEST_TRACING_HEADER",
    } <= events.RESERVED_ENV


def test_after_deploy_calls_every_plugin_with_job_manifest_and_user(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    seen: list[tuple[str, Any, Any, Any]] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def after_job_deploy(
            self, job: Mapping[str, Any], manifest: Mapping[str, Any], deployed_by: str | None
        ) -> None:
            seen.append((self.name, job, manifest, deployed_by))

    racetrack_register_plugin(Recorder("first"), "first")
    racetrack_register_plugin(Recorder("second"), "second")
    assert events.notify_job_deployed(racetrack_plugin_manager, JOB, MANIFEST, "admin") == []
    assert seen == [("second", JOB, MANIFEST, "admin"), ("first", JOB, MANIFEST, "admin")]


def test_after_deploy_failure_is_logged_and_the_other_plugins_still_run(
    racetrack_plugin_manager: PluginManager,
    racetrack_register_plugin: RegisterPlugin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    class Failing:
        @hookimpl
        def after_job_deploy(self) -> None:
            raise ConnectionError("chat server unreachable")

    class Working:
        @hookimpl(trylast=True)
        def after_job_deploy(self) -> None:
            ran.append("working")

    racetrack_register_plugin(Working(), "working")
    racetrack_register_plugin(Failing(), "notify-chat")
    warnings = events.notify_job_deployed(racetrack_plugin_manager, JOB, MANIFEST, None)
    message = (
        "plugin 'notify-chat' failed in hook 'after_job_deploy': "
        "ConnectionError: chat server unreachable"
    )
    assert warnings == [message]
    assert ran == ["working"]
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("racetrack.events", "WARNING", message)
    ]


def test_after_deploy_racetrack_error_becomes_a_warning_too(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class LooksUpSomething:
        @hookimpl
        def after_job_deploy(self) -> None:
            raise NotFoundError("unknown infrastructure target 'mars'")

    racetrack_register_plugin(LooksUpSomething(), "lookup")
    warnings = events.notify_job_deployed(racetrack_plugin_manager, JOB, MANIFEST, None)
    assert warnings == [
        "plugin 'lookup' failed in hook 'after_job_deploy': unknown infrastructure target 'mars'"
    ]


def test_after_delete_failures_are_logged_and_returned(
    racetrack_plugin_manager: PluginManager,
    racetrack_register_plugin: RegisterPlugin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deleted: list[tuple[Any, Any]] = []

    class Cleaner:
        @hookimpl
        def after_job_delete(self, job: Mapping[str, Any], deleted_by: str | None) -> None:
            deleted.append((job["name"], deleted_by))

    class Failing:
        @hookimpl
        def after_job_delete(self, job: Mapping[str, Any]) -> None:
            raise ValueError(f"no bucket for {job['name']}")

    racetrack_register_plugin(Cleaner(), "cleaner")
    racetrack_register_plugin(Failing(), "bucket")
    caplog.set_level(logging.WARNING, logger="racetrack.events")
    failures = events.notify_job_deleted(racetrack_plugin_manager, JOB, "admin")
    message = "plugin 'bucket' failed in hook 'after_job_delete': ValueError: no bucket for adder"
    assert failures == [message]
    assert deleted == [("adder", "admin")]
    assert [r.getMessage() for r in caplog.records] == [message]

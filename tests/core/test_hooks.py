"""One test per hook in ``racetrack_core/hookspecs.py``, each through the core code that calls it.

``test_every_hook_has_a_test_and_docs`` keeps this module and ``docs/plugins.md`` in step with
the hook specifications: adding a hook without both fails the suite.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from racetrack_core import PluginManager, events, hookimpl, hookspecs
from racetrack_core.auth import Caller, authenticate_with_plugins
from racetrack_core.baseimages import BaseImageRegistrar, declared_base_images
from racetrack_core.errors import ManifestError, PluginError
from racetrack_core.infrastructure import InfrastructureDriver, TargetContext
from racetrack_core.manifest import Problem, parse_manifest
from racetrack_core.recipes import ArtifactKind
from racetrack_core.registry import InfrastructureRegistrar, JobType, JobTypeRegistrar
from racetrack_core.schema import composed_schema, validate_manifest
from racetrack_core.testing.plugin import RegisterPlugin

DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"
#: How docs/plugins.md introduces a hook: a level-4 heading holding its call signature.
DOC_HEADING = re.compile(r"^#### `(?P<name>\w+)\((?P<args>[^)]*)\)`$", re.MULTILINE)

JOB_TYPE = JobType(name="python3", version="1.0.0", plugin="python3")
MANIFEST: Mapping[str, Any] = {
    "name": "adder",
    "owner_email": "a@example.com",
    "jobtype": "python3",
}
JOB: Mapping[str, Any] = {"name": "adder", "version": "1.0.0", "status": "running"}


def hook_specs() -> dict[str, Callable[..., Any]]:
    """Every function that pluggy sees as a Racetrack hook specification."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if callable(function) and hasattr(function, marker)
    }


def documented_signature(function: Callable[..., Any]) -> str:
    """``name(arg, ...)``: the form docs/plugins.md uses in each hook's heading."""
    args = ", ".join(inspect.signature(function).parameters)
    return f"{function.__name__}({args})"


def test_every_hook_has_a_test_and_docs() -> None:
    specs = hook_specs()
    assert len(specs) >= 10
    missing_tests = [name for name in specs if not callable(globals().get(f"test_hook_{name}"))]
    assert missing_tests == []
    headings = DOC_HEADING.finditer(DOCS.read_text(encoding="utf-8"))
    documented = {m["name"]: f"{m['name']}({m['args']})" for m in headings}
    assert documented == {name: documented_signature(spec) for name, spec in specs.items()}


# ---------------------------------------------------------------- registration


def test_hook_register_job_types(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    extra = {"type": "object", "properties": {"greeting": {"type": "string"}}}

    class Anvil:
        @hookimpl
        def register_job_types(self, registry: JobTypeRegistrar) -> None:
            assert registry.plugin == "anvil"
            registry.register("anvil", "1.0.0", extra_schema=extra, description="Hammers.")
            registry.register("anvil", "1.1.0-rc.1", options={"base_image": "debian"})

    racetrack_register_plugin(Anvil(), "anvil")
    registry = racetrack_plugin_manager.job_types
    chosen = registry.resolve("anvil:latest")
    assert (chosen.ref, chosen.plugin, chosen.extra_schema) == ("anvil:1.0.0", "anvil", extra)
    assert registry.resolve("anvil:1.1.0-rc.1").options == {"base_image": "debian"}
    assert registry.resolve("python3").plugin == "python3"


def test_hook_register_infrastructure_targets(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    def driver(context: TargetContext) -> InfrastructureDriver:
        raise AssertionError("not started in this test")

    class Moon:
        @hookimpl
        def register_infrastructure_targets(self, registry: InfrastructureRegistrar) -> None:
            registry.register(
                "moon-base",
                driver,
                accepts={ArtifactKind.IMAGE},
                description="Runs jobs on the moon.",
            )

    racetrack_register_plugin(Moon(), "moon")
    target = racetrack_plugin_manager.infrastructure_targets.get("moon-base")
    assert (target.driver, target.plugin, target.description) == (
        driver,
        "moon",
        "Runs jobs on the moon.",
    )


def test_hook_register_base_images(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Kiln:
        @hookimpl
        def register_base_images(self, registry: BaseImageRegistrar) -> None:
            assert registry.plugin == "kiln"
            registry.register("kiln/base:bookworm", ["python3", "curl"])

    racetrack_register_plugin(Kiln(), "kiln")
    declared = {spec.name: spec for spec in declared_base_images(racetrack_plugin_manager)}
    kiln = declared["kiln/base:bookworm"]
    assert (kiln.packages, kiln.suite, kiln.plugin) == (("python3", "curl"), "bookworm", "kiln")
    assert declared["racetrack/python3-base:bookworm"].plugin == "python3"


# ---------------------------------------------------------------- manifest

MONITORING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"dashboard": {"type": "string"}},
}

MANIFEST_TEXT = """\
name: adder
owner_email: adder@example.com
version: 1.0.0
jobtype: python3:1.x
git:
  remote: https://github.com/TheRacetrack/racetrack
  directory: sample/python-adder
jobtype_extra:
  entrypoint_path: {entrypoint_path}
  entrypoint_class: {entrypoint_class}
"""


def test_hook_manifest_schema_fragments(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Monitoring:
        @hookimpl
        def manifest_schema_fragments(self) -> Mapping[str, Any]:
            return {"monitoring": MONITORING}

    racetrack_register_plugin(Monitoring(), "monitoring")
    assert composed_schema(racetrack_plugin_manager)["properties"]["monitoring"] == MONITORING

    text = MANIFEST_TEXT.format(entrypoint_path="adder.py", entrypoint_class="Adder")
    valid = validate_manifest(
        parse_manifest(text + "monitoring:\n  dashboard: grafana\n"), racetrack_plugin_manager
    )
    assert valid.data["monitoring"] == {"dashboard": "grafana"}
    with pytest.raises(ManifestError) as caught:
        validate_manifest(
            parse_manifest(text + "monitoring:\n  dashboard: 3\n"), racetrack_plugin_manager
        )
    assert caught.value.problems == [
        "field 'monitoring.dashboard' (line 12): expected a string, got the number 3"
    ]

    class Shadow:
        @hookimpl
        def manifest_schema_fragments(self) -> Mapping[str, Any]:
            return {"name": {"type": "integer"}}

    racetrack_register_plugin(Shadow(), "shadow")
    with pytest.raises(PluginError) as refused:
        composed_schema(racetrack_plugin_manager)
    assert str(refused.value) == (
        "plugin 'shadow' adds manifest field 'name', which the core schema defines already"
    )


def test_hook_validate_manifest(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    seen: list[tuple[Mapping[str, Any], JobType]] = []

    class Capitals:
        """Not the job type's own plugin: every plugin is asked."""

        @hookimpl
        def validate_manifest(
            self, manifest: Mapping[str, Any], job_type: JobType
        ) -> Iterable[Problem] | None:
            seen.append((manifest, job_type))
            entry_class = manifest["jobtype_extra"]["entrypoint_class"]
            if entry_class[0].isupper():
                return None
            return [Problem("jobtype_extra.entrypoint_class", "a class name starts with a capital")]

    racetrack_register_plugin(Capitals(), "capitals")
    good = MANIFEST_TEXT.format(entrypoint_path="adder.py", entrypoint_class="Adder")
    assert (
        validate_manifest(parse_manifest(good), racetrack_plugin_manager).job_type.ref
        == "python3:1.0.0"
    )
    assert seen[0][0]["name"] == "adder"
    assert seen[0][1].ref == "python3:1.0.0"

    bad = MANIFEST_TEXT.format(entrypoint_path="../adder.py", entrypoint_class="adder")
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(bad), racetrack_plugin_manager)
    assert caught.value.problems == [
        # From the built-in python3 plugin, then from ours: sorted by line.
        "field 'jobtype_extra.entrypoint_path' (line 9): '../adder.py' leaves the job "
        "directory; use a path inside it",
        "field 'jobtype_extra.entrypoint_class' (line 10): a class name starts with a capital",
    ]


# ---------------------------------------------------------------- request and auth


class FakeRequest:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.cookies: Mapping[str, str] = {}
        self.url = "http://127.0.0.1:7105/pub/job/adder/latest/perform"


def test_hook_authenticate_request(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    asked: list[str] = []

    class Sso:
        @hookimpl(tryfirst=True)
        def authenticate_request(self, request: FakeRequest) -> Caller | None:
            asked.append("sso")
            if request.headers.get("X-Sso-Ticket") == "ok":
                return Caller(kind="user", name="alice@example.com")
            return None

    class Abstains:
        @hookimpl(tryfirst=True)
        def authenticate_request(self) -> None:
            asked.append("abstains")

    class Everyone:
        @hookimpl
        def authenticate_request(self) -> Caller:
            asked.append("everyone")
            return Caller(kind="esc", name="fallback")

    # Registered last, so pluggy would call it first, were it not for tryfirst on the others.
    racetrack_register_plugin(Sso(), "sso")
    racetrack_register_plugin(Abstains(), "abstains")
    racetrack_register_plugin(Everyone(), "everyone")

    caller = authenticate_with_plugins(
        racetrack_plugin_manager, FakeRequest({"X-Sso-Ticket": "ok"})
    )
    assert caller == Caller(kind="user", name="alice@example.com")
    assert asked == ["abstains", "sso"]

    asked.clear()
    caller = authenticate_with_plugins(racetrack_plugin_manager, FakeRequest({}))
    assert caller == Caller(kind="esc", name="fallback")
    assert asked == ["abstains", "sso", "everyone"]


@dataclass(frozen=True)
class PlainRoute:
    """Stands in for a Starlette Route: the core passes route objects through untouched."""

    path: str
    methods: tuple[str, ...] = ("GET",)


def test_hook_api_routes(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    billing_routes = [PlainRoute("/invoices"), PlainRoute("/invoices/{id}", ("GET", "DELETE"))]

    class Billing:
        @hookimpl
        def api_routes(self) -> list[PlainRoute]:
            return billing_routes

    class Metrics:
        @hookimpl
        def api_routes(self) -> list[PlainRoute]:
            return [PlainRoute("/scrape")]

    class Silent:
        @hookimpl
        def api_routes(self) -> None:
            return None

    racetrack_register_plugin(Billing(), "billing")
    racetrack_register_plugin(Metrics(), "metrics")
    racetrack_register_plugin(Silent(), "silent")
    # pluggy calls the last registered first and leaves out None answers.
    assert racetrack_plugin_manager.hook.api_routes()[:2] == [
        [PlainRoute("/scrape")],
        billing_routes,
    ]
    per_plugin = {
        name: call() for name, call in racetrack_plugin_manager.implementations("api_routes")
    }
    assert (
        per_plugin.items()
        >= {
            "billing": billing_routes,
            "metrics": [PlainRoute("/scrape")],
            "silent": None,
        }.items()
    )


def test_hook_cli_commands(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Greeter:
        @hookimpl
        def cli_commands(self, cli: click.Group) -> None:
            @cli.command()
            @click.argument("name")
            def greet(name: str) -> None:
                """Greet someone."""
                click.echo(f"hello, {name}")

    @click.group()
    def cli() -> None:
        """The racetrack command, as the CLI builds it."""

    racetrack_register_plugin(Greeter(), "greeter")
    racetrack_plugin_manager.hook.cli_commands(cli=cli)
    assert "greet" in cli.commands
    result = CliRunner().invoke(cli, ["greet", "world"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello, world\n"


# ---------------------------------------------------------------- deployment


def returning_env(env: Mapping[str, Any]) -> object:
    class Plugin:
        @hookimpl
        def job_runtime_env(self) -> Mapping[str, Any]:
            return env

    return Plugin()


def test_hook_job_runtime_env(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    class Defaults:
        @hookimpl(trylast=True)
        def job_runtime_env(self, manifest: Mapping[str, Any], job_type: JobType) -> dict[str, str]:
            return {"LOG_LEVEL": "info", "JOB_LABEL": f"{manifest['name']}/{job_type.ref}"}

    racetrack_register_plugin(Defaults(), "defaults")
    racetrack_register_plugin(returning_env({"LOG_LEVEL": "debug", "REGION": "eu"}), "first")
    racetrack_register_plugin(returning_env({"REGION": "us"}), "second")
    # Call order is second, first, defaults (trylast); the plugin called first wins, so the
    # trylast plugin only provides defaults.
    env = events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)
    assert (
        env.items()
        >= {
            "LOG_LEVEL": "debug",
            "REGION": "us",
            "JOB_LABEL": "adder/python3:1.0.0",
        }.items()
    )

    racetrack_register_plugin(returning_env({"PUB_URL": "http://evil.invalid"}), "reserved")
    with pytest.raises(PluginError) as reserved:
        events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)
    assert str(reserved.value) == (
        "plugin 'reserved' tried to set PUB_URL in job_runtime_env; Racetrack sets it itself"
    )
    racetrack_plugin_manager.unregister("reserved")

    racetrack_register_plugin(returning_env({"WORKERS": 4}), "numbers")
    with pytest.raises(PluginError) as bad_value:
        events.plugin_runtime_env(racetrack_plugin_manager, MANIFEST, JOB_TYPE)
    assert str(bad_value.value) == (
        "plugin 'numbers' returned a int for WORKERS from job_runtime_env; values must be strings"
    )


def test_hook_after_job_deploy(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    received: list[tuple[Any, ...]] = []

    class Announcer:
        @hookimpl
        def after_job_deploy(
            self, job: Mapping[str, Any], manifest: Mapping[str, Any], deployed_by: str | None
        ) -> None:
            received.append((job["name"], manifest["owner_email"], deployed_by))

    class Flaky:
        @hookimpl
        def after_job_deploy(self, job: Mapping[str, Any]) -> None:
            raise TimeoutError(f"webhook for {job['name']} timed out")

    racetrack_register_plugin(Announcer(), "announcer")
    racetrack_register_plugin(Flaky(), "flaky")
    warnings = events.notify_job_deployed(racetrack_plugin_manager, JOB, MANIFEST, "admin")
    assert warnings == [
        "plugin 'flaky' failed in hook 'after_job_deploy': "
        "TimeoutError: webhook for adder timed out"
    ]
    assert received == [("adder", "a@example.com", "admin")]


def test_hook_after_job_delete(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    received: list[tuple[Any, ...]] = []

    class Archiver:
        @hookimpl
        def after_job_delete(self, job: Mapping[str, Any], deleted_by: str | None) -> None:
            received.append((job["name"], job["version"], deleted_by))

    racetrack_register_plugin(Archiver(), "archiver")
    assert events.notify_job_deleted(racetrack_plugin_manager, JOB, "admin") == []
    assert events.notify_job_deleted(racetrack_plugin_manager, JOB, None) == []
    assert received == [("adder", "1.0.0", "admin"), ("adder", "1.0.0", None)]

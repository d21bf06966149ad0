"""Manifest validation: the corpus of invalid manifests with their exact errors, valid ones,
the composed schema, and plugin contributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from racetrack_core import PluginManager, hookimpl
from racetrack_core.errors import ManifestError, PluginError
from racetrack_core.manifest import Problem, load_manifest, parse_manifest
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_core.schema import composed_schema, core_schema, validate_manifest
from racetrack_core.testing.plugin import RegisterPlugin
from racetrack_plugins.python3.image import Python3ImageRecipe

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
INVALID = sorted((HERE / "manifests" / "invalid").glob("*.yaml"))
# The embedding sample's job type exists only inside its own platform, so it is left out here.
VALID = sorted((HERE / "manifests" / "valid").glob("*.yaml")) + sorted(
    path for path in ROOT.glob("sample/*/job.yaml") if path.parent.name != "embedding"
)


def expected_problems(path: Path) -> list[str]:
    prefix = "# expect: "
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    return PluginManager().load()


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert all(expected_problems(path) for path in INVALID)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_manifest_gives_its_exact_errors(path: Path, plugins: PluginManager) -> None:
    with pytest.raises(ManifestError) as caught:
        validate_manifest(load_manifest(path), plugins)
    assert caught.value.problems == expected_problems(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("path", VALID, ids=[f"{p.parent.name}/{p.stem}" for p in VALID])
def test_valid_manifest_passes(path: Path, plugins: PluginManager) -> None:
    valid = validate_manifest(load_manifest(path), plugins)
    assert valid.job_type.name == str(valid.data["jobtype"]).partition(":")[0]
    assert valid.version == valid.data.get("version", "0.0.1")


def test_user_guide_primer_manifest_is_unchanged(plugins: PluginManager) -> None:
    text = (ROOT / "sample" / "python-primer" / "job.yaml").read_text(encoding="utf-8")
    assert text == (
        "name: primer\n"
        "owner_email: sample@example.com\n"
        "jobtype: python3:latest\n"
        "git:\n"
        "  remote: https://github.com/TheRacetrack/racetrack\n"
        "  directory: sample/python-primer\n"
        "jobtype_extra:\n"
        "  entrypoint_path: 'entrypoint.py'\n"
        "  entrypoint_class: 'JobEntrypoint'\n"
    )
    valid = validate_manifest(parse_manifest(text), plugins)
    assert valid.data["version"] == "0.0.1"
    assert valid.job_type.ref == "python3:1.0.0"


def test_defaults_are_filled_in(plugins: PluginManager) -> None:
    valid = validate_manifest(load_manifest(HERE / "manifests" / "valid" / "golang.yaml"), plugins)
    assert valid.data["git"]["directory"] == "."
    assert valid.data["version"] == "0.1.0"
    assert "version: 0.1.0" in valid.to_yaml()


@pytest.mark.parametrize("path", VALID, ids=[f"{p.parent.name}/{p.stem}" for p in VALID])
def test_composed_schema_accepts_valid_manifests(path: Path, plugins: PluginManager) -> None:
    schema = composed_schema(plugins)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(load_manifest(path).data, schema)


@pytest.mark.parametrize(
    "name",
    ["typo_top_level", "typo_jobtype_extra", "python_version_malformed", "golang_extra_unknown"],
)
def test_composed_schema_rejects_what_validation_rejects(name: str, plugins: PluginManager) -> None:
    data = load_manifest(HERE / "manifests" / "invalid" / f"{name}.yaml").data
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, composed_schema(plugins))


def test_core_schema_covers_every_documented_field() -> None:
    fields = set(core_schema()["properties"])
    documented = {
        "name", "owner_email", "version", "jobtype", "git", "jobtype_extra", "build_env",
        "runtime_env", "secret_build_env_file", "secret_runtime_env_file", "labels",
        "public_endpoints", "replicas", "resources", "infrastructure_target",
        "system_dependencies",
    }  # fmt: skip
    assert documented <= fields
    resources = core_schema()["properties"]["resources"]["properties"]
    assert set(resources) == {"memory_min", "memory_max", "cpu_min", "cpu_max"}
    assert set(core_schema()["properties"]["git"]["properties"]) == {
        "remote",
        "branch",
        "directory",
    }


def test_python3_fragment_has_every_jobtype_extra_field(plugins: PluginManager) -> None:
    fragment = plugins.job_types.resolve("python3:latest").extra_schema
    assert fragment is not None
    assert set(fragment["properties"]) == {
        "entrypoint_path", "entrypoint_class", "requirements_path", "python_version",
        "home_page", "max_concurrency", "max_concurrency_queue",
        "debian_version", "debian_backports", "check_requirements", "memray_profiler",
    }  # fmt: skip


class ExtraFields:
    @hookimpl
    def manifest_schema_fragments(self) -> dict[str, Any]:
        return {
            "monitoring": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"dashboard": {"type": "string"}},
            }
        }


class ClashingFields:
    @hookimpl
    def manifest_schema_fragments(self) -> dict[str, Any]:
        return {"replicas": {"type": "string"}}


class BrokenSchema:
    @hookimpl
    def manifest_schema_fragments(self) -> dict[str, Any]:
        return {"broken": {"type": "no-such-type"}}


PRIMER = (ROOT / "sample" / "python-primer" / "job.yaml").read_text(encoding="utf-8")


def test_plugin_fields_are_accepted_and_validated() -> None:
    plugins = PluginManager().load()
    plugins.register(ExtraFields(), "monitoring")
    valid = validate_manifest(parse_manifest(PRIMER + "monitoring:\n  dashboard: main\n"), plugins)
    assert valid.data["monitoring"] == {"dashboard": "main"}
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(PRIMER + "monitoring:\n  dashbord: main\n"), plugins)
    assert caught.value.problems == [
        "unknown field 'monitoring.dashbord' (line 11): did you mean 'monitoring.dashboard'?"
    ]
    assert "monitoring" in composed_schema(plugins)["properties"]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (ClashingFields(), "plugin 'clash' adds manifest field 'replicas', which the core schema"),
        (BrokenSchema(), "plugin 'clash' manifest field 'broken' has an invalid JSON schema"),
    ],
)
def test_bad_plugin_fields_are_rejected_naming_the_plugin(plugin: object, message: str) -> None:
    plugins = PluginManager().load()
    plugins.register(plugin, "clash")
    with pytest.raises(PluginError, match=message):
        validate_manifest(parse_manifest(PRIMER), plugins)


class StrictGreeter:
    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register(
            "greeter",
            "2.1.0",
            extra_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {"greeting": {"type": "string"}},
            },
        )

    @hookimpl
    def validate_manifest(self, manifest: dict[str, Any], job_type: JobType) -> list[Problem]:
        if job_type.name != "greeter":
            return []
        greeting = manifest.get("jobtype_extra", {}).get("greeting", "")
        if greeting.lower() != greeting:
            return [Problem("jobtype_extra.greeting", f"'{greeting}' must be lower-case")]
        return []


GREETER = "name: hi\nowner_email: a@b.c\njobtype: greeter:2.*\njobtype_extra:\n  greeting: {}\n"


def test_job_type_plugin_checks_its_own_extra_section() -> None:
    plugins = PluginManager().load()
    plugins.register(StrictGreeter(), "greeter")
    valid = validate_manifest(parse_manifest(GREETER.format("hello")), plugins)
    assert valid.job_type.ref == "greeter:2.1.0"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(GREETER.format("Hello")), plugins)
    assert caught.value.problems == [
        "field 'jobtype_extra.greeting' (line 5): 'Hello' must be lower-case"
    ]
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(GREETER.format("[1]")), plugins)
    assert caught.value.problems == [
        "field 'jobtype_extra.greeting' (line 5): expected a string, got a list"
    ]


def test_problems_are_reported_in_base_manifest_file(
    tmp_path: Path, plugins: PluginManager
) -> None:
    (tmp_path / "base.yaml").write_text(
        "owner_email: team@example.com\njobtype: python3:latest\nreplicas: zero\n"
    )
    (tmp_path / "job.yaml").write_text(
        "extends: base.yaml\nname: child\njobtype_extra:\n  entrypoint_path: main.py\n"
    )
    with pytest.raises(ManifestError) as caught:
        validate_manifest(load_manifest(tmp_path), plugins)
    assert caught.value.problems == [
        "field 'replicas' (base.yaml line 3): expected an integer, got the string 'zero'"
    ]


def test_problems_from_extra_vars_name_the_option(plugins: PluginManager) -> None:
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(PRIMER, extra_vars=["replicas=0"]), plugins)
    assert caught.value.problems == [
        "field 'replicas' (from -e replicas): 0 is too small: the minimum is 1"
    ]


def test_every_core_field_is_documented() -> None:
    docs = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    schema = core_schema()
    for name, field in schema["properties"].items():
        assert f"`{name}" in docs, f"docs/manifest.md does not describe '{name}'"
        for child in field.get("properties", {}):
            assert f"`{name}.{child}`" in docs, f"docs/manifest.md misses '{name}.{child}'"


class Kiln:
    """Job types the local target cannot run: one offers an image recipe only, one nothing."""

    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register("kiln", "1.0.0", recipes=Recipes(image=Python3ImageRecipe()))
        registry.register("bare", "1.0.0")


def test_a_target_that_cannot_run_the_job_type_is_refused_naming_the_ones_that_can(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(Kiln(), "kiln")
    plugins = racetrack_plugin_manager
    kiln = "name: k\nowner_email: a@b.c\njobtype: kiln\ngit: {remote: https://x.invalid/r}\n"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(kiln + "infrastructure_target: local\n"), plugins)
    [problem] = caught.value.problems
    assert problem.startswith("field 'infrastructure_target'")
    assert "job type 'kiln:1.0.0' cannot run on infrastructure target 'local'" in problem
    assert problem.endswith("Targets that can run it: docker, kubernetes")

    with pytest.raises(ManifestError) as by_default:
        validate_manifest(parse_manifest(kiln), plugins, default_target="local")
    [problem] = by_default.value.problems
    assert problem.startswith("field 'jobtype'")
    assert problem.endswith("(the server's default target is 'local')")
    # Without a default target (racetrack validate on a laptop), only a named target is checked.
    assert validate_manifest(parse_manifest(kiln), plugins).job_type.name == "kiln"

    bare = kiln.replace("jobtype: kiln", "jobtype: bare")
    with pytest.raises(ManifestError) as caught:
        validate_manifest(parse_manifest(bare), plugins, default_target="docker")
    [problem] = caught.value.problems
    assert "offers no recipe (process or image), so no infrastructure target can run it" in problem


def test_python3_runs_on_every_built_in_target(plugins: PluginManager) -> None:
    base = "name: p\nowner_email: a@b.c\njobtype: python3\ngit: {remote: https://x.invalid/r}\n"
    base += "jobtype_extra: {entrypoint_path: entrypoint.py}\n"
    for target in plugins.infrastructure_targets.names():
        manifest = parse_manifest(base + f"infrastructure_target: {target}\n")
        assert validate_manifest(manifest, plugins, default_target="local").data["name"] == "p"


def test_a_job_pinned_to_an_original_python3_version_runs_on_ours_with_a_warning(
    plugins: PluginManager,
) -> None:
    text = (ROOT / "sample" / "python-primer" / "job.yaml").read_text(encoding="utf-8")
    valid = validate_manifest(
        parse_manifest(text.replace("python3:latest", "python3:2.15.1")), plugins
    )
    assert valid.job_type.ref == "python3:1.0.0"
    [warning] = [w for w in valid.warnings if "2.15.1" in w]
    assert "original Racetrack" in warning
    assert "jobtype: python3:1.0.0" in warning

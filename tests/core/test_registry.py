"""Job-type and infrastructure-target registries: validation, duplicates and resolution."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from racetrack_core.errors import NotFoundError, RegistrationError
from racetrack_core.infrastructure import BuildLog, InfrastructureDriver, JobSpec, TargetContext
from racetrack_core.recipes import ArtifactKind, BuildSettings, ImageContext, Recipes
from racetrack_core.registry import InfrastructureRegistry, JobType, JobTypeRegistry

pytestmark = pytest.mark.smoke  # fast and self-contained: run in the first-run test

ANY_KIND = set(ArtifactKind)


def _driver(context: TargetContext) -> InfrastructureDriver:
    raise AssertionError("registration never makes a driver")


class _Process:
    def environment_key(self, spec: JobSpec) -> str:
        return "key"

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        pass

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        return ["true"]


class _Image:
    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        return ImageContext(directory=directory, base_image="scratch", port=7000)


@pytest.fixture
def job_types() -> JobTypeRegistry:
    registry = JobTypeRegistry()
    builtin = registry.registrar("python3")
    for version in ("1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1"):
        builtin.register("python3", version, extra_schema={"type": "object"})
    registry.registrar("golang").register("golang", "1.0.0")
    return registry


def test_registrar_records_the_plugin_and_the_options() -> None:
    registry = JobTypeRegistry()
    job_type = registry.registrar("hello").register(
        "hello", "1.0.0", description="Says hello.", options={"base_image": "debian"}
    )
    assert job_type == JobType(
        name="hello",
        version="1.0.0",
        description="Says hello.",
        options={"base_image": "debian"},
        plugin="hello",
    )
    assert job_type.ref == "hello:1.0.0"
    assert list(registry) == [job_type]


@pytest.mark.parametrize(
    "name", ["Python3", "3python", "py_thon", "py--thon", "python-", "", "py thon"]
)
def test_malformed_job_type_name_is_rejected_naming_the_plugin(name: str) -> None:
    registrar = JobTypeRegistry().registrar("acme")
    expected = (
        f"plugin 'acme' registered a job type named {name!r}: a name is lower-case letters, "
        "digits and single hyphens, starting with a letter (like 'python3')"
    )
    with pytest.raises(RegistrationError, match=f"^{re.escape(expected)}$"):
        registrar.register(name, "1.0.0")


def test_job_type_name_that_is_not_a_string_is_rejected() -> None:
    registrar = JobTypeRegistry().registrar("acme")
    with pytest.raises(RegistrationError, match=r"^plugin 'acme' registered a job type named 3: "):
        registrar.register(3, "1.0.0")  # type: ignore[arg-type]


def test_job_type_name_with_a_trailing_newline_is_rejected() -> None:
    with pytest.raises(RegistrationError):
        JobTypeRegistry().registrar("acme").register("python3\n", "1.0.0")


@pytest.mark.parametrize("version", ["1", "1.0", "v1.0.0", "latest", "1.x", "", "1.0.0\n"])
def test_malformed_job_type_version_is_rejected_naming_the_plugin(version: str) -> None:
    registrar = JobTypeRegistry().registrar("acme")
    expected = (
        f"plugin 'acme' registered job type 'anvil' with version {version!r}: "
        "a version is a semantic version (like 1.0.0)"
    )
    with pytest.raises(RegistrationError, match=f"^{re.escape(expected)}$"):
        registrar.register("anvil", version)


def test_extra_schema_must_be_a_mapping() -> None:
    registrar = JobTypeRegistry().registrar("acme")
    with pytest.raises(RegistrationError) as caught:
        registrar.register("anvil", "1.0.0", extra_schema=["type", "object"])  # type: ignore[arg-type]
    assert str(caught.value) == (
        "plugin 'acme' registered job type 'anvil:1.0.0' with an extra_schema that is not "
        "a JSON-schema object"
    )


def test_duplicate_job_type_names_both_plugins() -> None:
    registry = JobTypeRegistry()
    registry.registrar("python3").register("python3", "1.0.0")
    with pytest.raises(RegistrationError) as caught:
        registry.registrar("python-fork").register("python3", "1.0.0")
    assert str(caught.value) == (
        "plugin 'python-fork' registered job type 'python3:1.0.0', which plugin 'python3' "
        "already registered: uninstall one of them, or block it with RACETRACK_DISABLE_PLUGINS"
    )
    assert [t.plugin for t in registry] == ["python3"]


def test_another_version_of_a_job_type_from_another_plugin_is_accepted() -> None:
    registry = JobTypeRegistry()
    registry.registrar("python3").register("python3", "1.0.0")
    registry.registrar("python-next").register("python3", "2.0.0")
    assert registry.versions_of("python3") == ["1.0.0", "2.0.0"]


def test_job_type_added_without_a_plugin_says_a_plugin() -> None:
    with pytest.raises(RegistrationError, match=r"^a plugin registered a job type named 'Bad': "):
        JobTypeRegistry().add(JobType(name="Bad", version="1.0.0"))


def test_listing_is_sorted_by_name_then_version(job_types: JobTypeRegistry) -> None:
    assert [t.ref for t in job_types] == [
        "golang:1.0.0",
        "python3:1.0.0",
        "python3:1.2.0",
        "python3:1.10.0",
        "python3:2.0.0-rc.1",
    ]
    assert len(job_types) == 5
    assert job_types.names() == ["golang", "python3"]
    assert job_types.versions_of("python3") == ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1"]
    assert job_types.versions_of("ruby") == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("python3", "python3:1.10.0"),
        ("python3:latest", "python3:1.10.0"),
        ("python3:1.2.0", "python3:1.2.0"),
        ("python3:1.*", "python3:1.10.0"),
        ("python3:1.x", "python3:1.10.0"),
        ("python3:1.2.x", "python3:1.2.0"),
        ("python3:2.x", "python3:2.0.0-rc.1"),
        ("python3:2.0.0-rc.1", "python3:2.0.0-rc.1"),
        ("golang:latest", "golang:1.0.0"),
    ],
)
def test_resolve(job_types: JobTypeRegistry, reference: str, expected: str) -> None:
    assert job_types.resolve(reference).ref == expected


def test_resolve_unknown_job_type_lists_the_installed_ones(job_types: JobTypeRegistry) -> None:
    with pytest.raises(NotFoundError) as caught:
        job_types.resolve("pyton3:latest")
    assert str(caught.value) == "unknown job type 'pyton3'. Installed: golang, python3"


def test_resolve_in_an_empty_registry_says_none_is_installed() -> None:
    with pytest.raises(NotFoundError, match=r"^unknown job type 'python3'. Installed: none$"):
        JobTypeRegistry().resolve("python3")


def test_resolve_invalid_pattern_lists_the_installed_versions(job_types: JobTypeRegistry) -> None:
    with pytest.raises(NotFoundError) as caught:
        job_types.resolve("python3:1.2")
    assert str(caught.value) == (
        "job type version '1.2' is not a version, 'latest' or a wildcard such as '1.*'. "
        "Installed versions of python3: 1.0.0, 1.2.0, 1.10.0, 2.0.0-rc.1"
    )


def test_resolve_without_a_match_lists_the_installed_versions(job_types: JobTypeRegistry) -> None:
    with pytest.raises(NotFoundError) as caught:
        job_types.resolve("python3:3.x")
    assert str(caught.value) == (
        "no version of job type 'python3' matches '3.x'. "
        "Installed versions: 1.0.0, 1.2.0, 1.10.0, 2.0.0-rc.1"
    )


def test_infrastructure_target_registration_and_lookup() -> None:
    registry = InfrastructureRegistry()
    driver = _driver
    target = registry.registrar("docker-infra").register(
        "docker", driver, accepts=ANY_KIND, description="Docker"
    )
    registry.registrar("local-infra").register("local", _driver, accepts=ANY_KIND)
    assert registry.get("docker") is target
    assert target.driver is driver
    assert target.plugin == "docker-infra"
    assert registry.names() == ["docker", "local"]
    assert [t.name for t in registry] == ["docker", "local"]
    assert len(registry) == 2


def test_unknown_infrastructure_target_lists_the_installed_ones() -> None:
    registry = InfrastructureRegistry()
    registry.registrar("local-infra").register("local", _driver, accepts=ANY_KIND)
    with pytest.raises(NotFoundError) as caught:
        registry.get("kubernetes")
    assert str(caught.value) == "unknown infrastructure target 'kubernetes'. Installed: local"
    with pytest.raises(NotFoundError, match=r"Installed: none$"):
        InfrastructureRegistry().get("local")


@pytest.mark.parametrize("name", ["Docker", "k8s_infra", "-local", ""])
def test_malformed_infrastructure_target_is_rejected_naming_the_plugin(name: str) -> None:
    registrar = InfrastructureRegistry().registrar("acme")
    expected = (
        f"plugin 'acme' registered an infrastructure target named {name!r}: a name is "
        "lower-case letters, digits and single hyphens, starting with a letter"
    )
    with pytest.raises(RegistrationError, match=f"^{re.escape(expected)}$"):
        registrar.register(name, _driver, accepts=ANY_KIND)


def test_duplicate_infrastructure_target_names_both_plugins() -> None:
    registry = InfrastructureRegistry()
    registry.registrar("docker-infra").register("docker", _driver, accepts=ANY_KIND)
    with pytest.raises(RegistrationError) as caught:
        registry.registrar("podman").register("docker", _driver, accepts=ANY_KIND)
    assert str(caught.value) == (
        "plugin 'podman' registered infrastructure target 'docker', which plugin "
        "'docker-infra' already registered: uninstall one of them, or block it with "
        "RACETRACK_DISABLE_PLUGINS"
    )


def test_a_target_must_accept_a_kind_of_recipe() -> None:
    registrar = InfrastructureRegistry().registrar("acme")
    with pytest.raises(RegistrationError, match="accept one or more of 'process', 'image'"):
        registrar.register("anvil", _driver, accepts=[])
    with pytest.raises(RegistrationError, match="accept one or more of"):
        registrar.register("anvil", _driver, accepts=["vm"])  # type: ignore[list-item]


def test_a_recipe_that_misses_the_protocol_is_rejected_naming_the_plugin() -> None:
    registrar = JobTypeRegistry().registrar("acme")
    with pytest.raises(RegistrationError) as caught:
        registrar.register("anvil", "1.0.0", recipes=Recipes(image=object()))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "plugin 'acme' registered job type 'anvil:1.0.0' with a image recipe of type object "
        "that lacks the methods of racetrack_core.recipes.ImageRecipe"
    )


def test_the_pair_of_job_type_and_target_names_the_targets_that_can_run_it() -> None:
    targets = InfrastructureRegistry()
    targets.registrar("local-infra").register("local", _driver, accepts={ArtifactKind.PROCESS})
    targets.registrar("docker-infra").register("docker", _driver, accepts={ArtifactKind.IMAGE})
    types = JobTypeRegistry()
    both = types.registrar("p").register("both", "1.0.0", recipes=Recipes(_Process(), _Image()))
    image = types.registrar("p").register("boxed", "1.0.0", recipes=Recipes(image=_Image()))
    bare = types.registrar("p").register("bare", "1.0.0")

    assert both.recipes.kinds() == {ArtifactKind.PROCESS, ArtifactKind.IMAGE}
    assert targets.runners_of(both) == ["docker", "local"]
    assert targets.mismatch(both, "local") is None
    assert targets.mismatch(image, "docker") is None
    assert targets.mismatch(image, "local") == (
        "job type 'boxed:1.0.0' cannot run on infrastructure target 'local': the target runs "
        "process recipes and the job type offers image recipes only. Targets that can run it: "
        "docker"
    )
    assert targets.mismatch(image, "kubernetes") is None  # not installed: reported elsewhere
    assert targets.mismatch(bare, "docker") == (
        "job type 'bare:1.0.0' offers no recipe (process or image), so no infrastructure "
        "target can run it: its plugin 'p' must register recipes (see docs/plugins.md)"
    )
    alone = InfrastructureRegistry()
    alone.registrar("local-infra").register("local", _driver, accepts={ArtifactKind.PROCESS})
    assert alone.mismatch(image, "local") is not None
    assert str(alone.mismatch(image, "local")).endswith(
        "No installed target accepts image recipes; install one"
    )


def test_a_version_of_the_original_job_type_resolves_to_the_one_that_stands_in_for_it() -> None:
    """Jobs written for the original Racetrack pin its versions (``python3:2.15.1``); the
    version that declares it runs them unchanged (``original_versions``) is chosen for them."""
    registry = JobTypeRegistry()
    registrar = registry.registrar("python3")
    registrar.register("python3", "1.0.0", original_versions="2.*")
    registrar.register("python3", "1.1.0", original_versions="2.*")
    registrar.register("python3", "1.2.0")
    assert registry.resolve("python3:2.15.1").ref == "python3:1.1.0"
    assert registry.resolve("python3:2.x").ref == "python3:1.1.0"
    assert registry.resolve("python3:1.0.0").ref == "python3:1.0.0"
    with pytest.raises(NotFoundError, match=r"no version of job type 'python3' matches '3\.0\.0'"):
        registry.resolve("python3:3.0.0")


def test_an_installed_version_wins_over_a_stand_in() -> None:
    registry = JobTypeRegistry()
    registry.registrar("python3").register("python3", "1.0.0", original_versions="2.*")
    registry.registrar("python-next").register("python3", "2.15.1")
    assert registry.resolve("python3:2.15.1").ref == "python3:2.15.1"


def test_original_versions_must_be_a_version_pattern() -> None:
    with pytest.raises(RegistrationError) as caught:
        JobTypeRegistry().registrar("python3").register("python3", "1.0.0", original_versions="2")
    assert str(caught.value) == (
        "plugin 'python3' registered job type 'python3:1.0.0' with original_versions '2': "
        "give a version or a wildcard such as '2.*'"
    )

"""The python3 image recipe: its Dockerfile template and the build context it renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest

from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import BuildSettings, ImageRecipe
from racetrack_plugins.python3 import DOCKERFILE_TEMPLATE
from racetrack_plugins.python3.image import Python3ImageRecipe, render_dockerfile
from racetrack_plugins.python3.packaging import copy_wrapper

REPO_ROOT = Path(__file__).resolve().parents[3]
CLASS_DIR = REPO_ROOT / "sample" / "python-class"
FULL_EXTRA = {
    "entrypoint_path": "entrypoint.py",
    "entrypoint_class": "PlanetCatalogue",
    "requirements_path": "requirements.txt",
    "home_page": "/api/v1/guide",
    "max_concurrency": 4,
    "max_concurrency_queue": 0,
}


def template() -> jinja2.Template:
    # A Dockerfile, not HTML: escaping would corrupt it.
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    return environment.from_string(DOCKERFILE_TEMPLATE.read_text(encoding="utf-8"))


def render(**extra: Any) -> str:
    return render_dockerfile("racetrack/python3-base:bookworm", extra)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` pairs, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the last instruction ends with a backslash"
    return found


def test_the_registered_job_type_offers_the_image_recipe(racetrack_plugin_manager) -> None:
    job_type = racetrack_plugin_manager.job_types.resolve("python3:latest")
    assert isinstance(job_type.recipes.image, Python3ImageRecipe)
    assert isinstance(job_type.recipes.image, ImageRecipe)


def test_it_renders_an_image_that_runs_the_wrapper_as_a_user() -> None:
    steps = instructions(render(**FULL_EXTRA))
    assert steps[0] == ("FROM", "racetrack/python3-base:bookworm")
    keywords = [keyword for keyword, _ in steps]
    assert ("EXPOSE", "7000") in steps
    assert keywords[-1] == "CMD"
    assert [arguments for keyword, arguments in steps if keyword == "USER"] == ["job"]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    [environment] = [arguments for keyword, arguments in steps if keyword == "ENV"]
    assert "JOB_PORT=7000" in environment.split()
    # The address comes from JOB_HOST, so that a target can change it (a Kubernetes pod).
    assert "JOB_HOST=127.0.0.1" in environment.split()
    assert json.loads(steps[-1][1]) == [
        "python", "-m", "racetrack_job_wrapper", "--job-dir", "/job",
        "--entrypoint-path", "entrypoint.py", "--entrypoint-class", "PlanetCatalogue",
        "--home-page", "/api/v1/guide", "--max-concurrency", "4",
        "--max-concurrency-queue", "0",
    ]  # fmt: skip


def test_build_secrets_are_mounted_for_one_step_and_never_kept() -> None:
    steps = instructions(render(**FULL_EXTRA))
    for keyword, arguments in steps:
        if keyword in {"ENV", "ARG", "LABEL", "COPY", "ADD"}:
            assert "secret" not in arguments.lower(), arguments
            assert "ca_bundle" not in arguments.lower(), arguments
    [install] = [arguments for keyword, arguments in steps if "id=build_secrets" in arguments]
    assert install.startswith("--mount=type=secret,id=build_secrets ")
    assert "--requirement /opt/racetrack/job-requirements.txt" in install
    # The wrapper's pins never meet the job's: they are installed apart and vendored.
    assert "wrapper/constraints.txt" not in install
    [vendoring] = [arguments for keyword, arguments in steps if "vendoring.py" in arguments]
    assert "id=build_secrets" not in vendoring
    assert "--target /opt/racetrack/wrapper/_install" in vendoring
    assert "--constraint /opt/racetrack/wrapper/constraints.txt" in vendoring
    assert not [keyword for keyword, _ in steps if keyword == "ARG"]


def test_optional_fields_are_left_out_and_values_are_quoted() -> None:
    steps = instructions(render(entrypoint_path='odd "name".py'))
    text = "\n".join(arguments for _, arguments in steps)
    assert "job-requirements" not in text
    command = json.loads(steps[-1][1])
    assert command[command.index("--entrypoint-path") + 1] == 'odd "name".py'
    assert "--entrypoint-class" not in command
    assert "--max-concurrency" not in command
    assert "--max-concurrency-queue" not in command
    assert command[command.index("--home-page") + 1] == "/docs"


def test_a_missing_base_image_is_an_error_not_an_empty_from() -> None:
    with pytest.raises(jinja2.UndefinedError):
        template().render(extra=FULL_EXTRA)


def test_every_copied_path_is_in_the_documented_build_context(tmp_path: Path) -> None:
    shutil.copytree(CLASS_DIR, tmp_path / "job")
    copy_wrapper(tmp_path / "wrapper")
    for keyword, arguments in instructions(render(**FULL_EXTRA)):
        if keyword != "COPY":
            continue
        sources = (
            json.loads(arguments)[:-1] if arguments.startswith("[") else arguments.split()[:-1]
        )
        for source in sources:
            assert (tmp_path / source).exists(), f"COPY {source}: not in the build context"


def spec_of(workspace: Path, manifest: dict[str, Any], **changes: Any) -> JobSpec:
    return JobSpec(
        name="planets",
        version="1.0.0",
        manifest=manifest,
        job_type=racetrack_job_type(),
        workspace=workspace,
        env={},
        deployment_id="d1",
        deployment_timestamp=1,
        state_dir=workspace.parent / "state",
        **changes,
    )


def racetrack_job_type() -> Any:
    from racetrack_core.registry import JobType
    from racetrack_plugins.python3 import RECIPES

    return JobType(name="python3", version="1.0.0", recipes=RECIPES)


def test_the_recipe_renders_a_context_with_secrets_outside_it(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    manifest = {
        "jobtype_extra": FULL_EXTRA,
        "system_dependencies": ["libpq5", "curl"],
        "build_env": {"PLAIN_FLAG": "1"},
    }
    spec = spec_of(CLASS_DIR, manifest, build_env={"PLAIN_FLAG": "1"},
                   build_secrets={"API_TOKEN": "tok 'quoted' 7f3a"})  # fmt: skip
    settings = BuildSettings(
        ca_bundle=bundle,
        package_index="https://user:pw@index.invalid/simple",
        base_images={"python:3.11-slim": "racetrack-test/py-root:x"},
    )
    context = Python3ImageRecipe().render(spec, tmp_path / "ctx", tmp_path / "secrets", settings)

    assert context.base_image == "racetrack-test/py-root:x"
    assert context.port == 7000
    assert context.build_args == {"PLAIN_FLAG": "1"}
    assert set(context.secrets) == {"build_secrets", "ca_bundle", "package_index"}
    assert context.secrets["ca_bundle"] == bundle
    for secret in context.secrets.values():
        assert not secret.is_relative_to(context.directory)
    assert (tmp_path / "secrets" / "build_secrets").stat().st_mode & 0o077 == 0
    assert (
        "API_TOKEN='tok '\"'\"'quoted'\"'\"' 7f3a'"
        in (tmp_path / "secrets" / "build_secrets").read_text()
    )
    everything = "".join(
        path.read_text(errors="replace") for path in context.directory.rglob("*") if path.is_file()
    )
    assert "7f3a" not in everything
    assert "pw@" not in everything
    steps = instructions((context.directory / "Dockerfile").read_text())
    assert steps[0] == ("FROM", "racetrack-test/py-root:x")
    [apt] = [arguments for keyword, arguments in steps if "apt-get install" in arguments]
    assert "--no-install-recommends libpq5 curl;" in apt
    assert apt.endswith("rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/99racetrack-ca")
    assert ("ARG", "PLAIN_FLAG") in steps
    assert not any(keyword == "ARG" and "API_TOKEN" in args for keyword, args in steps)
    assert (context.directory / "job" / "entrypoint.py").is_file()
    assert (context.directory / "wrapper" / "racetrack_job_wrapper" / "__main__.py").is_file()


def test_without_settings_the_base_image_follows_the_python_version(tmp_path: Path) -> None:
    manifest = {"jobtype_extra": {"entrypoint_path": "entrypoint.py", "python_version": "3.12"}}
    context = Python3ImageRecipe().render(
        spec_of(CLASS_DIR, manifest), tmp_path / "ctx", tmp_path / "s", BuildSettings()
    )
    assert context.base_image == "python:3.12-slim"
    assert context.secrets == {}
    assert "apt-get" not in (context.directory / "Dockerfile").read_text()


def test_a_missing_ca_bundle_is_named(tmp_path: Path) -> None:
    settings = BuildSettings(ca_bundle=tmp_path / "nowhere.pem")
    manifest = {"jobtype_extra": {"entrypoint_path": "entrypoint.py"}}
    with pytest.raises(
        DeployError, match=r"build setting ca_bundle: .*nowhere\.pem' is not a file"
    ):
        Python3ImageRecipe().render(
            spec_of(CLASS_DIR, manifest), tmp_path / "ctx", tmp_path / "s", settings
        )


def test_a_missing_entrypoint_file_is_named_before_anything_is_built(tmp_path: Path) -> None:
    manifest = {"jobtype_extra": {"entrypoint_path": "nowhere.py"}}
    with pytest.raises(
        DeployError, match=r"entrypoint file 'nowhere\.py' \(jobtype_extra\.entrypoint_path\) "
    ):
        Python3ImageRecipe().render(
            spec_of(CLASS_DIR, manifest), tmp_path / "ctx", tmp_path / "s", BuildSettings()
        )
    assert not (tmp_path / "ctx").exists()

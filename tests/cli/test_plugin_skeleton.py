"""``racetrack plugin new NAME``: the project it writes builds into a wheel whose plugin a plugin
manager loads through its entry point, and the project's own tests pass (one of them deploys
its example job on a real ``racetrack up`` and calls it through Pub)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from racetrack_core.baseimages import declared_base_images
from racetrack_core.plugins import PluginManager
from racetrack_core.recipes import ArtifactKind, debian_base_of
from tests.cli.conftest import RunCli
from tests.e2e.plugin_index import build_wheel
from tests.samples.hello import bootstrapped

NAME = "node-script"
MODULE = "racetrack_node_script_jobtype"
REPOSITORY = "racetrack-test-skeleton"
FILES = [
    "README.md",
    "example/job.yaml",
    "pyproject.toml",
    f"{MODULE}/__init__.py",
    f"{MODULE}/recipes.py",
    f"{MODULE}/runtime.py",
    f"tests/test_{MODULE}.py",
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project written by the command, and its wheel unpacked into a folder (as an
    installer would put it into site-packages)."""
    from click.testing import CliRunner

    from racetrack_cli.main import cli

    root = tmp_path_factory.mktemp("skeleton")
    project = root / "project"
    result = CliRunner().invoke(cli, ["plugin", "new", NAME, "--directory", str(project)])
    assert result.exit_code == 0, result.output
    wheel = build_wheel(project, root / "dist")
    assert wheel.name == f"{MODULE}-0.1.0-py3-none-any.whl"
    site = root / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return project, site


def test_new_writes_the_project_and_says_what_next(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "mine"
    result = run_cli("plugin", "new", NAME, "--directory", str(project))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(project / path) for path in FILES]
    assert sorted(
        str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()
    ) == sorted(FILES)
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "racetrack-node-script-jobtype"' in pyproject
    assert f'[project.entry-points."racetrack.plugins"]\n{NAME} = "{MODULE}"' in pyproject
    assert "{{" not in "".join((project / path).read_text() for path in FILES)
    assert f"next: cd {project} && pip install -e . pytest && pytest" in result.stderr
    assert oct(project.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())
    # By default the folder is named after the distribution, in the current directory.
    monkeypatch.chdir(tmp_path)
    assert run_cli("plugin", "new", "other").exit_code == 0
    assert (tmp_path / "racetrack-other-jobtype" / "racetrack_other_jobtype").is_dir()


def current_umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Node", "Error: NAME 'Node' is not a job type name: use lower-case letters"),
        ("node--script", "Error: NAME 'node--script' is not a job type name"),
        ("python3", "Error: NAME 'python3' is a built-in job type of Racetrack"),
    ],
)
def test_a_bad_name_is_refused_and_nothing_is_written(
    run_cli: RunCli, tmp_path: Path, name: str, error: str
) -> None:
    result = run_cli("plugin", "new", name, "--directory", str(tmp_path / "p"))
    assert result.exit_code == 1
    assert result.stderr.startswith(error)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_written_into(run_cli: RunCli, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = run_cli("plugin", "new", NAME, "--directory", str(taken))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {taken} exists already and is not an empty folder: choose another with "
        "--directory, or remove it\n"
    )
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]
    assert [path.name for path in taken.iterdir()] == ["notes.txt"]
    # An empty folder is taken as the destination.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("plugin", "new", NAME, "--directory", str(empty)).exit_code == 0
    assert (empty / "pyproject.toml").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty", "taken"]


@pytest.fixture
def on_path(installed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The unpacked wheel on ``sys.path``; its modules are forgotten afterwards."""
    _, site = installed
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [name for name in sys.modules if name.startswith(MODULE)]:
        del sys.modules[module]


def test_the_wheels_plugin_loads_through_its_entry_point(on_path: Path) -> None:
    manager = PluginManager().load()
    assert NAME in manager.names()
    [info] = [info for info in manager.describe() if info.name == NAME]
    assert (info.distribution, info.version) == ("racetrack-node-script-jobtype", "0.1.0")
    assert info.job_types == [f"{NAME}:1.0.0"]
    assert info.hooks == ["register_job_types", "validate_manifest"]
    job_type = manager.job_types.resolve(f"{NAME}:latest")
    assert job_type.recipes.kinds() == {ArtifactKind.PROCESS, ArtifactKind.IMAGE}
    declared = {spec.name: spec for spec in declared_base_images(manager)}
    base = declared["racetrack-node-script-jobtype/base:bookworm"]
    assert (base.packages, base.plugin) == (("python3",), NAME)


@pytest.mark.slow
def test_the_image_recipe_builds_and_serves_in_a_container(on_path: Path, tmp_path: Path) -> None:
    """The Docker target builds the project's image FROM the base image its recipe declares
    (bootstrapped from Debian) and serves the job from a container."""
    from racetrack_core.images import LABEL_JOB
    from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
    from tests.plugins.docker_infra.conftest import CA_BUNDLE, Jobs

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine: {error}")
    manager = PluginManager().load()
    job_type = manager.job_types.resolve(f"{NAME}:1.0.0")
    image_recipe: object = job_type.recipes.image
    base = debian_base_of(image_recipe)
    assert base is not None
    base_image = bootstrapped(base, NAME, tmp_path / "bootstrap")
    jobs = Jobs(tmp_path, base_image, client)
    build = {"repository": REPOSITORY, "ca_bundle": str(CA_BUNDLE)}
    try:
        spec = jobs.spec(
            name="skeleton",
            version="1.0.0",
            job_type=job_type,
            manifest={"jobtype_extra": {"message": "Hello"}},
        )
        driver = jobs.driver(build=build)
        driver.prepare(spec, jobs.build_log.append)
        replica = driver.start(spec)
        live = jobs.wait_until(lambda: jobs.live(replica.url), f"{replica.url}/live")
        assert live == {"live": True, "deployment_timestamp": 100}
        answer = jobs.http.post(replica.url + "/pub/job/skeleton/1.0.0/api/v1/perform", json=[1])
        assert answer.json() == {"message": "Hello", "input": [1], "job_type": f"{NAME}:1.0.0"}
        driver.delete("skeleton", "1.0.0")
    finally:
        # Only what this test made: its containers (by home), its images, its base image.
        label = f"{LABEL_HOME}={home_digest(jobs.home)}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for image in client.images.list(filters={"label": LABEL_JOB}):
            if any(tag.startswith(REPOSITORY + "/") for tag in image.tags):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image.id, force=True)
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(base_image)
        for made in jobs.drivers:
            made.client.close()
        jobs.http.close()
        jobs.database.dispose()
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_projects_own_tests_pass(installed: tuple[Path, Path]) -> None:
    project, site = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    # Our environment holds kmock, whose pytest plugin needs pytest-asyncio (not installed):
    # blocked as in our own pytest settings; the project's own environment has no kmock.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:kmock"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout, done.stdout

"""The python3 process recipe: real environments built with uv, real job processes on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import ProcessRecipe
from racetrack_core.registry import JobType
from racetrack_plugins.python3 import RECIPES, packaging, process
from racetrack_plugins.python3.process import Python3ProcessRecipe

REPO_ROOT = Path(__file__).resolve().parents[3]
PRIMER_DIR = REPO_ROOT / "sample" / "python-primer"
CLASS_DIR = REPO_ROOT / "sample" / "python-class"
CLASS_EXTRA = {
    "entrypoint_path": "entrypoint.py",
    "entrypoint_class": "PlanetCatalogue",
    "requirements_path": "requirements.txt",
    "home_page": "/api/v1/guide",
    "max_concurrency": 4,
    "max_concurrency_queue": 0,
}


def make_spec(workspace: Path, state_dir: Path, **extra: Any) -> JobSpec:
    extra.setdefault("entrypoint_path", "entrypoint.py")
    return JobSpec(
        name="job",
        version="1.0.0",
        manifest={"name": "job", "jobtype": "python3:latest", "jobtype_extra": extra},
        job_type=JobType(name="python3", version="1.0.0", recipes=RECIPES),
        workspace=workspace,
        env={},
        deployment_id="deployment-1",
        deployment_timestamp=1700000123,
        state_dir=state_dir,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- environment_key and command: no environment needed ------------------------------------


def test_the_recipe_honours_the_protocol() -> None:
    assert isinstance(Python3ProcessRecipe(), ProcessRecipe)


def test_the_registered_job_type_carries_the_recipe_and_the_template(racetrack_plugin_manager):
    job_type = racetrack_plugin_manager.job_types.resolve("python3:latest")
    assert isinstance(job_type.recipes.process, Python3ProcessRecipe)
    assert job_type.recipes.image is not None


def test_the_environment_key_is_short_and_stable(tmp_path: Path) -> None:
    recipe = Python3ProcessRecipe()
    key = recipe.environment_key(make_spec(CLASS_DIR, tmp_path, **CLASS_EXTRA))
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert recipe.environment_key(make_spec(CLASS_DIR, tmp_path, **CLASS_EXTRA)) == key
    assert recipe.environment_key(make_spec(CLASS_DIR, tmp_path / "other", **CLASS_EXTRA)) == key


def test_the_environment_key_ignores_where_the_workspace_is(tmp_path: Path) -> None:
    copy = shutil.copytree(CLASS_DIR, tmp_path / "checkout")
    recipe = Python3ProcessRecipe()
    original = recipe.environment_key(make_spec(CLASS_DIR, tmp_path, **CLASS_EXTRA))
    assert recipe.environment_key(make_spec(copy, tmp_path, **CLASS_EXTRA)) == original


def test_the_environment_key_changes_with_the_requirements(tmp_path: Path) -> None:
    recipe = Python3ProcessRecipe()
    without = recipe.environment_key(make_spec(tmp_path, tmp_path))
    (tmp_path / "requirements.txt").write_text("humanize>=4.9\n")
    spec = make_spec(tmp_path, tmp_path, requirements_path="requirements.txt")
    first = recipe.environment_key(spec)
    (tmp_path / "requirements.txt").write_text("humanize>=4.10\n")
    second = recipe.environment_key(spec)
    assert len({without, first, second}) == 3


def test_the_environment_key_follows_included_requirement_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-r more.txt\n")
    (tmp_path / "more.txt").write_text("humanize>=4.9\n")
    spec = make_spec(tmp_path, tmp_path, requirements_path="requirements.txt")
    recipe = Python3ProcessRecipe()
    first = recipe.environment_key(spec)
    (tmp_path / "more.txt").write_text("humanize>=4.10\n")
    assert recipe.environment_key(spec) != first


def test_the_environment_key_changes_with_the_python_version(tmp_path: Path) -> None:
    recipe = Python3ProcessRecipe()
    default = recipe.environment_key(make_spec(tmp_path, tmp_path))
    own = process.server_python_version()
    assert recipe.environment_key(make_spec(tmp_path, tmp_path, python_version=own)) == default
    assert recipe.environment_key(make_spec(tmp_path, tmp_path, python_version="3.99")) != default


def test_the_wrapper_dependencies_are_pinned_to_the_servers_versions() -> None:
    requirements = packaging.wrapper_requirements()
    constraints = packaging.wrapper_constraints()
    for name in ("starlette", "uvicorn", "anyio", "swagger-ui-bundle"):
        assert f"{name}=={metadata.version(name)}" in requirements
        assert f"{name}=={metadata.version(name)}" in constraints
    # What they need comes along, pinned too: uvicorn needs h11, swagger-ui-bundle jinja2.
    assert f"h11=={metadata.version('h11')}" in constraints
    assert f"jinja2=={metadata.version('jinja2')}" in constraints
    assert not any(line.startswith("racetrack") for line in constraints)


def test_the_wrapper_is_copied_as_a_standalone_package(tmp_path: Path) -> None:
    package = packaging.copy_wrapper(tmp_path)
    assert package == tmp_path / "racetrack_job_wrapper"
    assert (package / "__main__.py").is_file()
    assert not list(package.rglob("__pycache__"))
    assert (
        tmp_path / "requirements.txt"
    ).read_text().splitlines() == packaging.wrapper_requirements()
    assert (
        tmp_path / "constraints.txt"
    ).read_text().splitlines() == packaging.wrapper_constraints()
    sources = "".join(path.read_text() for path in package.glob("*.py"))
    assert not re.search(r"^\s*(from|import) racetrack", sources, re.MULTILINE)


def test_the_command_runs_the_wrapper_with_the_jobs_settings(tmp_path: Path) -> None:
    spec = make_spec(CLASS_DIR, tmp_path / "state", **CLASS_EXTRA)
    command = Python3ProcessRecipe().command(spec, tmp_path / "env", 7123)
    assert command[0] == str(tmp_path / "env" / "bin" / "python")
    assert command[1:4] == ["-B", "-m", "racetrack_job_wrapper"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options == {
        "--entrypoint-path": "entrypoint.py",
        "--entrypoint-class": "PlanetCatalogue",
        "--job-dir": str(CLASS_DIR),
        "--host": "127.0.0.1",
        "--port": "7123",
        "--home-page": "/api/v1/guide",
        "--max-concurrency": "4",
        "--max-concurrency-queue": "0",
    }


def test_the_command_leaves_out_what_the_manifest_leaves_out(tmp_path: Path) -> None:
    command = Python3ProcessRecipe().command(make_spec(PRIMER_DIR, tmp_path), tmp_path, 7000)
    assert "--entrypoint-class" not in command
    assert "--max-concurrency" not in command
    assert "--max-concurrency-queue" not in command
    assert "--access-log" not in command  # Pub logs the calls; the job's access log stays off
    assert command[command.index("--home-page") + 1] == "/docs"


def test_a_python_version_that_is_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    spec = make_spec(PRIMER_DIR, tmp_path, python_version="3.99")
    with pytest.raises(DeployError) as raised:
        Python3ProcessRecipe().build(spec, tmp_path / "env", lambda line: None)
    message = str(raised.value)
    assert message.startswith("Python 3.99 (jobtype_extra.python_version) is not installed")
    assert process.server_python_version() in message.split("available: ")[1]
    assert not (tmp_path / "env").exists()


def test_a_missing_requirements_file_is_a_clear_error(tmp_path: Path) -> None:
    spec = make_spec(PRIMER_DIR, tmp_path, requirements_path="requirements.txt")
    with pytest.raises(DeployError, match=r"requirements file 'requirements.txt' .* not found"):
        Python3ProcessRecipe().build(spec, tmp_path / "env", lambda line: None)


# --- real environments ---------------------------------------------------------------------


@dataclass
class BuiltEnvironment:
    env_dir: Path
    log: list[str]
    seconds: float


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltEnvironment:
    """One environment for sample/python-class (its requirements included), built once."""
    root = tmp_path_factory.mktemp("python3-env")
    log: list[str] = []
    started = time.monotonic()
    spec = make_spec(CLASS_DIR, root / "state", **CLASS_EXTRA)
    Python3ProcessRecipe().build(spec, root / "env", log.append)
    return BuiltEnvironment(root / "env", log, time.monotonic() - started)


def run_python(env_dir: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


@pytest.mark.slow
def test_build_streams_the_tools_output_to_the_log(built: BuiltEnvironment) -> None:
    assert built.log[0] == f"creating a Python {process.server_python_version()} environment"
    assert any(re.search(r"\+ humanize==", line) for line in built.log), built.log
    assert any(re.search(r"\+ starlette==", line) for line in built.log), built.log
    assert built.log[-1] == f"environment ready: Python {process.server_python_version()}"
    assert list((built.env_dir / "wrapper" / "racetrack_job_wrapper").glob("__pycache__/*.pyc"))


@pytest.mark.slow
def test_the_environment_imports_the_wrapper_and_the_requirements(built: BuiltEnvironment):
    done = run_python(
        built.env_dir,
        "import racetrack_job_wrapper, humanize; "
        "from racetrack_job_wrapper._vendor import starlette; print(starlette.__version__)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == metadata.version("starlette")
    # The wrapper's dependencies are vendored: the job's own namespace holds its requirements.
    assert run_python(built.env_dir, "import starlette").returncode != 0
    # The environment needs no part of Racetrack itself.
    assert run_python(built.env_dir, "import racetrack_core").returncode != 0


@pytest.mark.slow
def test_the_environment_still_works_once_its_folder_is_renamed(built: BuiltEnvironment, tmp_path):
    """The local target builds in a temporary folder and renames it into place."""
    moved = tmp_path / "renamed"
    shutil.copytree(built.env_dir, moved, symlinks=True)
    done = run_python(moved, "import racetrack_job_wrapper; print(racetrack_job_wrapper.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(moved))


@contextmanager
def serving(command: list[str], env: Mapping[str, str], log_path: Path) -> Iterator[httpx.Client]:
    """Start ``command``; yield a client once it is ready; stop it by its pid at the end."""
    port = int(command[command.index("--port") + 1])
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                deadline = time.monotonic() + 30
                while True:
                    assert process.poll() is None, log_path.read_text()
                    try:
                        if client.get("/ready").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
                yield client
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def job_env(spec: JobSpec, port: int, **more: str) -> dict[str, str]:
    """The runtime environment a target would pass: no PYTHONPATH, nothing of the server's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "JOB_NAME": spec.name,
        "JOB_VERSION": spec.version,
        "JOB_DEPLOYMENT_TIMESTAMP": str(spec.deployment_timestamp),
        "JOB_PORT": str(port),
        **more,
    }


@pytest.mark.slow
def test_the_command_serves_the_primer_sample(built: BuiltEnvironment, tmp_path: Path) -> None:
    workspace = shutil.copytree(PRIMER_DIR, tmp_path / "primer")
    spec = make_spec(workspace, tmp_path / "state", entrypoint_class="JobEntrypoint")
    port = free_port()
    command = Python3ProcessRecipe().command(spec, built.env_dir, port)
    with serving(command, job_env(spec, port), tmp_path / "job.log") as client:
        answer = client.post("/api/v1/perform", json={"number": 7907})
        assert (answer.status_code, answer.json()) == (200, True)
        assert client.get("/live").json() == {"live": True, "deployment_timestamp": 1700000123}
        assert client.post("/pub/job/job/1.0.0/api/v1/perform", json={"number": 8}).json() is False
    assert "Application shutdown complete" in (tmp_path / "job.log").read_text()
    # The job directory is left as it was fetched.
    assert not list(workspace.rglob("__pycache__"))


@pytest.mark.slow
def test_the_command_serves_the_python_class_sample(built: BuiltEnvironment, tmp_path) -> None:
    spec = make_spec(CLASS_DIR, tmp_path / "state", **CLASS_EXTRA)
    port = free_port()
    command = Python3ProcessRecipe().command(spec, built.env_dir, port)
    env = job_env(spec, port, PLANETS_CATALOGUE="data/planets.json")
    with serving(command, env, tmp_path / "job.log") as client:
        answer = client.post("/api/v1/perform", json={"planet": "Earth"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["summary"] == "Earth is 149.6 million km from the Sun"
        home = client.get("/", follow_redirects=False)
        assert home.headers["location"] == "api/v1/guide"


@pytest.mark.slow
def test_build_env_reaches_the_installer_and_never_the_log(tmp_path: Path) -> None:
    workspace = tmp_path / "job"
    workspace.mkdir()
    (workspace / "requirements.txt").write_text("-r ${RACETRACK_TEST_EXTRA}\n")
    (workspace / "private.txt").write_text("humanize>=4.9\n")
    spec = replace(
        make_spec(workspace, tmp_path / "state", requirements_path="requirements.txt"),
        build_env={"RACETRACK_TEST_EXTRA": "private.txt"},
        build_secrets={"API_TOKEN": "tok-8c1f0e"},
    )
    log: list[str] = []
    Python3ProcessRecipe().build(spec, tmp_path / "env", log.append)
    assert run_python(tmp_path / "env", "import humanize").returncode == 0
    everything = "\n".join(log)
    assert "tok-8c1f0e" not in everything
    assert "private.txt" not in everything


@pytest.mark.slow
def test_a_requirement_that_cannot_be_installed_names_itself(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("racetrack-no-such-package-xyz==0.0.0\n")
    spec = make_spec(tmp_path, tmp_path / "state", requirements_path="requirements.txt")
    log: list[str] = []
    with pytest.raises(DeployError) as raised:
        Python3ProcessRecipe().build(spec, tmp_path / "env", log.append)
    message = str(raised.value)
    assert message.startswith("installing the job's requirements failed: ")
    assert "racetrack-no-such-package-xyz" in message
    assert "racetrack-no-such-package-xyz" in raised.value.log_tail
    assert raised.value.log_tail.splitlines()[-1] == log[-1]


def test_the_build_environment_leaves_out_the_servers_own_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from racetrack_plugins.python3.packaging import build_environment

    monkeypatch.setenv("RACETRACK_ADMIN_PASSWORD", "not for jobs")
    monkeypatch.setenv("RACETRACK_INTERNAL_TOKEN", "rt_not-for-jobs")
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    environment = build_environment()
    assert "RACETRACK_ADMIN_PASSWORD" not in environment
    assert "RACETRACK_INTERNAL_TOKEN" not in environment
    assert environment["UV_INDEX_URL"] == "http://127.0.0.1:9/simple"

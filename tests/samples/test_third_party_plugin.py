"""The sample third-party plugin, installed into a fresh environment and uninstalled again.

This is the path a plugin author takes: ``racetrack plugin install --local DIR`` builds and
installs the distribution with uv, ``racetrack plugin list`` and ``racetrack validate`` see its
job type, and ``racetrack plugin uninstall`` removes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLUGIN = REPO / "sample" / "plugins" / "racetrack-hello-jobtype"
BUILT_INS = {"python3", "golang", "docker-proxy"}


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, check=False, env=env
    )


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with this repository installed (editable)."""
    root = tmp_path_factory.mktemp("venv") / "env"
    done = run(uv(), "venv", "--python", sys.executable, root)
    assert done.returncode == 0, done.stderr
    constraints = REPO / "constraints.txt"
    constrain = ["-c", str(constraints)] if constraints.is_file() else []
    python = root / "bin" / "python"
    done = run(uv(), "pip", "install", "--python", python, *constrain, "-e", REPO)
    assert done.returncode == 0, done.stderr
    return root


def racetrack(venv: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RACETRACK_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    env["VIRTUAL_ENV"] = str(venv)
    return run(venv / "bin" / "racetrack", *args, env=env)


def plugins(venv: Path) -> dict[str, dict[str, Any]]:
    done = racetrack(venv, "plugin", "list", "--local", "--json")
    assert done.returncode == 0, done.stderr
    return {plugin["name"]: plugin for plugin in json.loads(done.stdout)}


def job_dir(parent: Path, name: str, extra: str) -> Path:
    directory = parent / name
    directory.mkdir()
    (directory / "job.yaml").write_text(
        f"name: {name}\nowner_email: someone@example.com\njobtype: hello:latest\n{extra}",
        encoding="utf-8",
    )
    return directory


@pytest.mark.slow
def test_install_list_validate_uninstall(venv: Path, tmp_path: Path) -> None:
    before = plugins(venv)
    assert set(before) >= BUILT_INS
    assert "hello" not in before

    done = racetrack(venv, "plugin", "install", "--local", SAMPLE_PLUGIN)
    assert done.returncode == 0, done.stderr
    assert "installed racetrack-hello-jobtype 0.1.0" in done.stdout.splitlines()
    assert "plugin hello 0.1.0: job types hello:1.0.0" in done.stdout.splitlines()

    hello = plugins(venv)["hello"]
    assert hello["job_types"] == ["hello:1.0.0"]
    assert hello["builtin"] is False
    assert hello["distribution"] == "racetrack-hello-jobtype"
    assert hello["hooks"] == ["register_job_types", "validate_manifest"]
    table = racetrack(venv, "plugin", "list", "--local").stdout
    assert any(line.split()[:3] == ["hello", "0.1.0", "no"] for line in table.splitlines())

    good = job_dir(tmp_path, "greeter", "jobtype_extra:\n  greeting: Hello, world\n")
    done = racetrack(venv, "validate", good)
    assert done.returncode == 0, done.stderr
    assert "greeting: Hello, world" in done.stdout

    bad = job_dir(tmp_path, "typo", "jobtype_extra:\n  greting: Hello\n")
    done = racetrack(venv, "validate", bad)
    assert done.returncode == 1
    assert "jobtype_extra.greting" in done.stderr
    assert "did you mean 'jobtype_extra.greeting'?" in done.stderr

    done = racetrack(venv, "validate", good, "-e", "jobtype_extra.greeting=' '")
    assert done.returncode == 1
    assert "field 'jobtype_extra.greeting'" in done.stderr
    assert "is blank" in done.stderr

    done = racetrack(venv, "plugin", "uninstall", "--local", "hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "uninstalled racetrack-hello-jobtype (plugin hello)\n"
    assert "hello" not in plugins(venv)

    done = racetrack(venv, "validate", good)
    assert done.returncode == 1
    assert "unknown job type 'hello'. Installed: docker-proxy, golang, python3" in done.stderr


@pytest.mark.slow
def test_uninstalling_a_built_in_is_refused(venv: Path) -> None:
    done = racetrack(venv, "plugin", "uninstall", "--local", "python3")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: 'python3' is a built-in plugin, part of the racetrack-platform distribution, and "
        "cannot be uninstalled; to turn it off, set RACETRACK_DISABLE_PLUGINS=python3"
    ]
    assert set(plugins(venv)) >= BUILT_INS


@pytest.mark.slow
def test_a_plugin_that_fails_to_load_is_not_left_installed(venv: Path, tmp_path: Path) -> None:
    broken = tmp_path / "racetrack-broken"
    (broken / "racetrack_broken").mkdir(parents=True)
    (broken / "racetrack_broken" / "__init__.py").write_text(
        "import no_such_module_anywhere\n", encoding="utf-8"
    )
    (broken / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "racetrack-broken"\nversion = "0.1.0"\n'
        '[project.entry-points."racetrack.plugins"]\nbroken = "racetrack_broken"\n',
        encoding="utf-8",
    )
    done = racetrack(venv, "plugin", "install", "--local", broken)
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last.startswith("Error: '")
    assert "so it was uninstalled again: plugin 'broken'" in last
    assert "No module named 'no_such_module_anywhere'" in last
    assert "broken" not in plugins(venv)
    listed = run(uv(), "pip", "list", "--python", venv / "bin" / "python", "--format", "json")
    assert "racetrack-broken" not in {item["name"] for item in json.loads(listed.stdout)}


@pytest.mark.slow
def test_a_wheel_and_a_requirement_install_too(venv: Path, tmp_path: Path) -> None:
    built = run(uv(), "build", "--wheel", "--out-dir", tmp_path / "dist", SAMPLE_PLUGIN)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("racetrack_hello_jobtype-0.1.0-*.whl")

    done = racetrack(venv, "plugin", "install", "--local", wheel)
    assert done.returncode == 0, done.stderr
    assert plugins(venv)["hello"]["job_types"] == ["hello:1.0.0"]
    done = racetrack(venv, "plugin", "uninstall", "--local", "racetrack-hello-jobtype")
    assert done.returncode == 0, done.stderr
    assert "hello" not in plugins(venv)

    requirement = f"racetrack-hello-jobtype @ {wheel.as_uri()}"
    done = racetrack(venv, "plugin", "install", "--local", requirement)
    assert done.returncode == 0, done.stderr
    assert plugins(venv)["hello"]["distribution"] == "racetrack-hello-jobtype"
    done = racetrack(venv, "plugin", "uninstall", "--local", "hello")
    assert done.returncode == 0, done.stderr
    assert "hello" not in plugins(venv)


@pytest.mark.slow
def test_staff_install_a_wheel_into_a_running_server_and_uninstall_it(
    venv: Path, tmp_path: Path
) -> None:
    """``POST /api/v1/plugin/upload/<wheel>``: the running server uses the job type at once."""
    import socket
    import time

    import httpx

    built = run(uv(), "build", "--wheel", "--out-dir", tmp_path / "dist", SAMPLE_PLUGIN)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("racetrack_hello_jobtype-0.1.0-*.whl")

    ports = []
    for _ in range(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RACETRACK_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    env.update({"VIRTUAL_ENV": str(venv), "RACETRACK_ADMIN_PASSWORD": "plugin test password"})
    argv = [str(venv / "bin" / "racetrack"), "up", "--home", str(tmp_path / "home")]
    argv += ["--lifecycle-port", str(ports[0]), "--pub-port", str(ports[1])]
    argv += ["--dashboard-port", str(ports[2])]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{ports[0]}/lifecycle/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{api}/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        login = httpx.post(
            f"{api}/users/login", json={"username": "admin", "password": "plugin test password"}
        )
        auth = {"X-Racetrack-Auth": login.json()["token"]}

        bad = httpx.post(f"{api}/plugin/upload/notes.txt", content=b"hello", headers=auth)
        assert bad.status_code == 400
        assert "not a wheel's file name" in bad.json()["error"]

        installed = httpx.post(
            f"{api}/plugin/upload/{wheel.name}",
            content=wheel.read_bytes(),
            headers=auth,
            timeout=120,
        )
        assert installed.status_code == 200, installed.text
        assert [plugin["name"] for plugin in installed.json()] == ["hello"]
        versions = httpx.get(f"{api}/plugin/job_type/versions", headers=auth).json()
        assert "hello:1.0.0" in versions

        removed = httpx.delete(f"{api}/plugin/hello", headers=auth, timeout=120)
        assert removed.status_code == 200, removed.text
        assert (
            "hello:1.0.0" not in httpx.get(f"{api}/plugin/job_type/versions", headers=auth).json()
        )
        assert "hello" not in plugins(venv)

        built_in = httpx.delete(f"{api}/plugin/python3", headers=auth)
        assert built_in.status_code == 400
        assert "built-in plugin" in built_in.json()["error"]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_samples_own_tests_pass_on_racetracks_fixtures(venv: Path) -> None:
    """What the sample's README tells its author to run: install it with pytest, run its tests
    (which use Racetrack's fixtures, down to a deployed job called through Pub)."""
    python = venv / "bin" / "python"
    done = run(uv(), "pip", "install", "--python", python, "-c", REPO / "constraints.txt", "pytest")
    assert done.returncode == 0, done.stderr
    done = racetrack(venv, "plugin", "install", "--local", SAMPLE_PLUGIN)
    assert done.returncode == 0, done.stderr
    try:
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        env.pop("PYTHONPATH", None)
        tests = subprocess.run(
            [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q"],
            cwd=SAMPLE_PLUGIN,
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
            check=False,
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "4 passed" in tests.stdout, tests.stdout
    finally:
        done = racetrack(venv, "plugin", "uninstall", "--local", "hello")
        assert done.returncode == 0, done.stderr

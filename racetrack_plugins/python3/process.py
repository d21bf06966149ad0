"""The python3 job type's process recipe: a job as a process in its own virtual environment.

``build`` makes the environment with uv: a venv on the Python that ``jobtype_extra.python_version``
asks for (default: the server's own) holding the job's requirements only, and a standalone copy
of the wrapper package (``env_dir/wrapper/racetrack_job_wrapper``, see ``packaging.py``) that a
``.pth`` file puts on the venv's path, with its runtime dependencies (pinned to the versions the
server runs) vendored inside it (``vendoring.py``): the job's pins always win for the job's code,
and the environment needs no part of Racetrack. uv never downloads a Python: a
version that the machine lacks is a DeployError that names the ones it has.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from uv import find_uv_bin

from racetrack_core.buildsteps import run_logged
from racetrack_core.infrastructure import BuildLog, DeployError, JobSpec
from racetrack_plugins.python3.packaging import (
    VENDORING_SCRIPT,
    WRAPPER_PACKAGE,
    build_environment,
    check_entrypoint,
    copy_wrapper,
    extra,
    requirements_digest,
    requirements_file,
    wrapper_constraints,
    wrapper_requirements,
    wrapper_source_digest,
)

#: Bump when ``build`` lays out environments differently, so that old ones are rebuilt.
LAYOUT = 2
_COMPILE_AND_IMPORT = (
    "import compileall, sys; compiled = compileall.compile_dir(sys.argv[1], quiet=1); "
    f"import {WRAPPER_PACKAGE}; sys.exit(0 if compiled else 1)"
)


def server_python_version() -> str:
    """The server's own ``major.minor``, the default ``python_version`` of a job."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


class Python3ProcessRecipe:
    """Build a python3 job's virtual environment with uv and run the wrapper from it."""

    def environment_key(self, spec: JobSpec) -> str:
        """A digest of the Python version, the requirements, the wrapper pins and its source."""
        requirements = requirements_file(spec)
        facts = {
            "layout": LAYOUT,
            "python": python_version(spec),
            "requirements": requirements_digest(requirements) if requirements else None,
            "wrapper_requirements": wrapper_requirements(),
            "wrapper_constraints": wrapper_constraints(),
            "wrapper_source": wrapper_source_digest(),
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        """Create the venv, install the pinned wrapper dependencies and the job's requirements."""
        version = python_version(spec)
        requirements = requirements_file(spec)
        if requirements is not None and not requirements.is_file():
            raise DeployError(
                f"requirements file '{extra(spec)['requirements_path']}' (jobtype_extra."
                f"requirements_path) not found in the job directory '{spec.workspace}'"
            )
        interpreter = _interpreter(version)
        if env_dir.exists():
            shutil.rmtree(env_dir)
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        environ = {**build_environment(), **spec.all_build_env, "UV_PYTHON_DOWNLOADS": "never"}
        log(f"creating a Python {version} environment")
        tail = _run(
            [_uv(), "venv", "--no-python-downloads", "--python", interpreter, str(env_dir)],
            environ,
            log,
        )
        if tail is not None:
            raise DeployError(f"creating a Python {version} environment failed", "\n".join(tail))

        wrapper_dir = env_dir / "wrapper"
        _vendor_wrapper(copy_wrapper(wrapper_dir), env_dir, environ, log)
        if requirements is not None:
            log(f"installing {requirements.name}")
            install = [_uv(), "pip", "install", "--compile-bytecode"]
            install += ["--python", str(_python(env_dir)), "--requirement", str(requirements)]
            tail = _run(install, environ, log)
            if tail is not None:
                raise DeployError(_install_problem(tail), "\n".join(tail))
        else:
            log("no requirements_path: the environment holds the wrapper only")

        _site_packages(env_dir).joinpath(f"{WRAPPER_PACKAGE}.pth").write_text(
            os.path.relpath(wrapper_dir, _site_packages(env_dir)) + "\n", encoding="utf-8"
        )
        # Compile the wrapper and check that it imports: the job runs with -B (see command).
        check = [str(_python(env_dir)), "-c", _COMPILE_AND_IMPORT, str(wrapper_dir)]
        tail = _run(check, environ, log)
        if tail is not None:
            raise DeployError(
                "the job's environment cannot import the wrapper; see the build log",
                "\n".join(tail),
            )
        log(f"environment ready: Python {version}")

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        """The wrapper, run by the environment's Python, serving on ``127.0.0.1:port``.

        ``-B``: the environment is compiled when it is built, and the job directory is left
        as it was fetched (no ``__pycache__`` written into it). No ``--access-log``: Pub logs
        and counts the calls, and a line per call would cost the job a third of its throughput.
        """
        options = extra(spec)
        check_entrypoint(spec)
        command = [str(_python(env_dir.absolute())), "-B", "-m", WRAPPER_PACKAGE]
        command += ["--entrypoint-path", str(options["entrypoint_path"])]
        if options.get("entrypoint_class"):
            command += ["--entrypoint-class", str(options["entrypoint_class"])]
        command += ["--job-dir", str(spec.workspace.absolute())]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        command += ["--home-page", str(options.get("home_page") or "/docs")]
        if options.get("max_concurrency"):
            command += ["--max-concurrency", str(options["max_concurrency"])]
        if options.get("max_concurrency_queue") is not None:
            command += ["--max-concurrency-queue", str(options["max_concurrency_queue"])]
        return command


def _vendor_wrapper(
    package: Path, env_dir: Path, environ: Mapping[str, str], log: BuildLog
) -> None:
    """Install the wrapper's pinned dependencies into a folder of their own (for the job's
    Python) and vendor them into the wrapper's package, apart from the job's requirements.

    ``--link-mode copy``: vendoring rewrites these files, and uv would otherwise hard-link them
    from its cache.
    """
    install_dir = package.parent / "_install"
    log("installing the wrapper's dependencies, vendored apart from the job's")
    install = [_uv(), "pip", "install", "--link-mode", "copy", "--target", str(install_dir)]
    install += ["--python", str(_python(env_dir))]
    install += ["--requirement", str(package.parent / "requirements.txt")]
    install += ["--constraint", str(package.parent / "constraints.txt")]
    tail = _run(install, environ, log)
    if tail is not None:
        raise DeployError(
            _install_problem(tail).replace("the job's requirements", "the wrapper's dependencies"),
            "\n".join(tail),
        )
    # Run by the job's own Python, which reads its packages' syntax (as in an image build).
    script = package.parent / VENDORING_SCRIPT.name
    tail = _run([str(_python(env_dir)), str(script), str(install_dir), str(package)], environ, log)
    if tail is not None:
        raise DeployError("vendoring the wrapper's dependencies failed", "\n".join(tail))
    shutil.rmtree(install_dir)


def python_version(spec: JobSpec) -> str:
    """The ``major.minor`` the job asks for, or the server's own."""
    return str(extra(spec).get("python_version") or server_python_version())


def find_python(version: str) -> str | None:
    """The interpreter of exactly ``version`` (``3.12``, or ``3.11.2`` to the patch) on this
    machine, or None; never one of another version."""
    if version in (server_python_version(), platform.python_version()):
        # The server's interpreter is always usable, even where uv would not discover it.
        return sys.executable
    done = subprocess.run(
        [_uv(), "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    found = done.stdout.strip()
    return found if done.returncode == 0 and found else None


def _interpreter(version: str) -> str:
    """What ``uv venv --python`` gets for ``version``; a DeployError if the machine lacks it."""
    found = find_python(version)
    if found is not None:
        return found
    raise DeployError(
        f"Python {version} (jobtype_extra.python_version) is not installed on this server; "
        f"available: {', '.join(available_pythons())}. Choose one of those, or ask an admin "
        "to install it"
    )


def available_pythons() -> list[str]:
    """``major.minor`` of every CPython that uv finds installed on this machine."""
    done = subprocess.run(
        [_uv(), "python", "list", "--only-installed", "--output-format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    found = {server_python_version()}
    try:
        for entry in json.loads(done.stdout or "[]"):
            if entry.get("implementation", "cpython") == "cpython":
                major, minor = entry["version_parts"]["major"], entry["version_parts"]["minor"]
                found.add(f"{major}.{minor}")
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # an older uv without JSON output: the server's own version is still known
    return sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))


def _install_problem(tail: Iterable[str]) -> str:
    """The sentence uv gave for a failed install, without its decoration."""
    lines = list(tail)
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if start is None:
        return "installing the job's requirements failed; see the build log"
    sentences: list[str] = []
    for line in lines[start:]:
        stripped = line.strip().removeprefix("error:").removeprefix("cause:").strip()
        if stripped:
            sentences.append(stripped.rstrip(":"))
    return "installing the job's requirements failed: " + ": ".join(sentences)


def _run(command: list[str], environ: Mapping[str, str], log: BuildLog) -> list[str] | None:
    """Run a build step without colours or progress bars in its output (see ``run_logged``)."""
    return run_logged(command, {**environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}, log)


def _python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _site_packages(env_dir: Path) -> Path:
    found = sorted(env_dir.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise DeployError(f"the environment '{env_dir}' has no single site-packages folder")
    return found[0]


def _uv() -> str:
    return find_uv_bin()

"""Building a Go job: its module copied with the wrapper beside it, then one ``go build``.

The job's folder is copied (without ``.git``), its ``go.mod`` fitted to the installed Go
(``gomod.fit_gomod``), and the wrapper's Go files written into ``racetrack_job_wrapper/`` inside
the job's module, with the Swagger UI assets and a generated ``job.go`` that binds the wrapper to
the module's ``Perform``. Being a package of the job's own module, the wrapper builds with the
job's dependencies however they come: ``vendor/`` (``-mod=vendor``, no network) or the module
proxy named by ``GOPROXY`` (``-mod=mod``). Nothing here depends on how a target calls a recipe.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from racetrack_core.infrastructure import DeployError
from racetrack_plugins.golang.gomod import (
    FittedGoMod,
    GoModError,
    GoVersion,
    fit_gomod,
    parse_go_version,
)

WRAPPER_SOURCE = Path(__file__).resolve().parent / "wrapper"
WRAPPER_PACKAGE = "racetrack_job_wrapper"
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
MISSING_GO = (
    "Go is not installed on this server ('go' is not on its PATH): install Debian's golang-go "
    "package (apt-get install golang-go), or deploy the job to a container target "
    "(infrastructure_target: docker)"
)
_PACKAGE = re.compile(r"^package\s+(\w+)", re.M)
_PERFORM = re.compile(r"^func\s+Perform\s*\(", re.M)
_EXAMPLE = re.compile(r"^func\s+DocsInputExample\s*\(\s*\)", re.M)


def find_go() -> str | None:
    """The ``go`` command on the server's PATH, or None."""
    return shutil.which("go")


@functools.lru_cache(maxsize=8)
def go_version(go: str) -> GoVersion:
    """The version of the ``go`` command at ``go`` (``go env GOVERSION``)."""
    done = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False, timeout=60
    )
    version = parse_go_version(done.stdout.strip())
    if done.returncode != 0 or version is None:
        raise DeployError(f"'{go} env GOVERSION' failed: {(done.stderr or done.stdout).strip()}")
    return version


@dataclass(frozen=True)
class PreparedSource:
    """A job's module, ready for ``go build``: where it is and how its dependencies come."""

    module_dir: Path
    gomod: FittedGoMod
    vendored: bool


def wrapper_files(tests: bool = False) -> list[Path]:
    """The wrapper's Go sources; its ``_test.go`` files too when ``tests``."""
    return sorted(
        path for path in WRAPPER_SOURCE.glob("*.go") if tests or not path.name.endswith("_test.go")
    )


def wrapper_digest() -> str:
    """A sha256 over the wrapper's sources and the Swagger UI assets it embeds."""
    digest = hashlib.sha256()
    for path in [*wrapper_files(), *(swagger_assets() / name for name in SWAGGER_ASSETS)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def swagger_assets() -> Path:
    """Where the ``swagger-ui-bundle`` package keeps the Swagger UI files (untyped package)."""
    return Path(str(importlib.import_module("swagger_ui_bundle").swagger_ui_path))


def source_digest(workspace: Path) -> str:
    """A sha256 over the job folder's files (names and contents), without ``.git``."""
    digest = hashlib.sha256()
    for path in sorted(workspace.rglob("*")):
        relative = path.relative_to(workspace)
        if ".git" in relative.parts:
            continue
        if path.is_symlink():  # its target, never what it points at (it may point anywhere)
            content = b"symlink:" + os.readlink(path).encode()
        elif path.is_file():
            content = path.read_bytes()
        else:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def prepare_source(
    workspace: Path, gomod: str, destination: Path, installed: GoVersion, *, tests: bool = False
) -> PreparedSource:
    """Copy the job into ``destination``, fit its go.mod and add the wrapper package (with its
    own tests when ``tests``, for ``go test``)."""
    if ".." in PurePosixPath(gomod).parts or PurePosixPath(gomod).is_absolute():
        raise DeployError(f"go.mod path '{gomod}' (jobtype_extra.gomod) leaves the job directory")
    if not (workspace / gomod).is_file():
        raise DeployError(
            f"'{gomod}' not found in the job directory: a golang job is a Go module; create it "
            "with 'go mod init example.com/job', or set jobtype_extra.gomod to its path"
        )
    shutil.copytree(workspace, destination, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    refuse_outside_links(destination)
    module_dir = destination / PurePosixPath(gomod).parent
    try:
        fitted = fit_gomod((module_dir / "go.mod").read_text("utf-8"), installed)
    except (GoModError, UnicodeDecodeError) as error:
        raise DeployError(f"{gomod}: {error}") from None
    (module_dir / "go.mod").write_text(fitted.text, "utf-8")
    sources = check_root_package(module_dir, gomod)
    wrapper = module_dir / WRAPPER_PACKAGE
    if wrapper.exists():
        raise DeployError(
            f"the job's module has a '{WRAPPER_PACKAGE}' folder; Racetrack puts "
            "its wrapper there: rename the folder"
        )
    write_wrapper(wrapper, fitted.module, bool(_EXAMPLE.search(sources)), tests=tests)
    return PreparedSource(module_dir, fitted, (module_dir / "vendor" / "modules.txt").is_file())


def refuse_outside_links(root: Path) -> None:
    """DeployError for a symbolic link that leads out of ``root``: the compiler would read (and
    quote in its errors) a file of the server."""
    resolved_root = root.resolve()
    for path in root.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(resolved_root):
            raise DeployError(
                f"'{path.relative_to(root).as_posix()}' is a symbolic link that leads out of the "
                "job directory; replace it with the file itself"
            )


def check_root_package(module_dir: Path, gomod: str) -> str:
    """The root package's sources, joined; DeployError unless it is a library with Perform."""
    files = sorted(p for p in module_dir.glob("*.go") if not p.name.endswith("_test.go"))
    where = str(PurePosixPath(gomod).parent)
    folder = "the job directory" if where == "." else f"'{where}'"
    sources = "\n".join(path.read_text("utf-8", "replace") for path in files)
    packages = sorted(set(_PACKAGE.findall(sources)))
    if not files:
        raise DeployError(f"no .go file next to go.mod in {folder}: write Perform there")
    if "main" in packages:
        raise DeployError(
            f"the Go files in {folder} are 'package main'; the module's root package must be a "
            "library package (like 'package job') holding func Perform"
        )
    if not _PERFORM.search(sources):
        raise DeployError(
            f"no func Perform in the Go files of {folder}: write func Perform(input "
            "map[string]interface{}) (interface{}, error) in the module's root package"
        )
    return sources


def write_wrapper(
    destination: Path, module: str, has_example: bool, *, tests: bool = False
) -> None:
    """The wrapper's Go files, its Swagger UI assets and the generated job.go."""
    (destination / "swagger-ui").mkdir(parents=True)
    for path in wrapper_files(tests):
        shutil.copyfile(path, destination / path.name)
    for name in SWAGGER_ASSETS:
        shutil.copyfile(swagger_assets() / name, destination / "swagger-ui" / name)
    (destination / "job.go").write_text(job_binding(module, has_example), "utf-8")


def job_binding(module: str, has_example: bool) -> str:
    """Go source binding the wrapper to the job's Perform (and DocsInputExample, if any)."""
    example = "job.DocsInputExample()" if has_example else "nil"
    return (
        "// Code generated by Racetrack. DO NOT EDIT.\n\npackage main\n\n"
        f'import job "{module}"\n\n'
        "var perform PerformFunc = job.Perform\n\n"
        f"var docsInputExample interface{{}} = {example}\n"
    )


def server_environment() -> dict[str, str]:
    """The server's environment without its own settings (``RACETRACK_*``: passwords, tokens,
    the database URL); proxy, CA and Go settings stay."""
    return {name: value for name, value in os.environ.items() if not name.startswith("RACETRACK_")}


def go_environment(base: Mapping[str, str], build_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a Go build: the server's, the job's build_env, then fixed settings.

    Without a ``GOPROXY`` setting modules are never downloaded (``off``); the site names its
    proxy (and ``GOSUMDB``, ``GOPRIVATE``...) in the server's environment. The toolchain is
    always the installed one, a ``go.work`` file is ignored, and the binary is static.
    """
    environ = {**base, **build_env}
    environ.setdefault("GOPROXY", "off")
    if environ["GOPROXY"] == "off":
        environ.setdefault("GOSUMDB", "off")
    environ.update(GOTOOLCHAIN="local", GOWORK="off", CGO_ENABLED="0", GOFLAGS="")
    return environ


def build_command(go: str, prepared: PreparedSource, output: Path) -> list[str]:
    mode = "vendor" if prepared.vendored else "mod"
    return [
        go,
        "build",
        f"-mod={mode}",
        "-trimpath",
        "-ldflags=-s -w",
        "-o",
        str(output),
        f"./{WRAPPER_PACKAGE}",
    ]


def loopvar_command(go: str, prepared: PreparedSource) -> list[str]:
    """``go vet``'s check for closures over a loop variable, whose meaning Go 1.22 changed."""
    mode = "vendor" if prepared.vendored else "mod"
    return [go, "vet", f"-mod={mode}", "-loopclosure", "./..."]

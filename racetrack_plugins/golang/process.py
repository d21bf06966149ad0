"""The golang job type's process recipe: the job's binary, built with the server's own ``go``.

An adapter from ``racetrack_core.recipes.ProcessRecipe`` (the recipe that the local target
runs) to the functions of ``build``: the environment is ``env_dir/bin/job``, a static
binary holding the job and the wrapper; the sources it was built from are removed once built.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from racetrack_core.buildsteps import run_logged
from racetrack_core.infrastructure import BuildLog, DeployError, JobSpec
from racetrack_plugins.golang import build, diagnosis
from racetrack_plugins.golang.gomod import format_go_version

#: Bump when ``build`` lays out environments differently, so that old ones are rebuilt.
LAYOUT = 1
#: Go settings of the server that change what a build fetches, so they count in the key.
GO_SETTINGS = ("GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE")


def build_variables(spec: JobSpec) -> Mapping[str, str]:
    """The job's build variables, plain and secret ones together: ``go build`` runs in one
    process on the server, where nothing outlives the build."""
    return spec.all_build_env


def gomod_path(spec: JobSpec) -> str:
    extra = spec.manifest.get("jobtype_extra") or {}
    gomod = extra.get("gomod") if isinstance(extra, Mapping) else None
    return str(gomod or "go.mod")


def required_go() -> str:
    """The server's ``go`` command; DeployError naming the package to install when missing."""
    go = build.find_go()
    if go is None:
        raise DeployError(build.MISSING_GO)
    return go


class GolangProcessRecipe:
    """Build a golang job into one binary with the host's ``go`` and run it."""

    def environment_key(self, spec: JobSpec) -> str:
        """A digest of the job's files, the Go version, the wrapper and the Go settings."""
        environ = build.go_environment(build.server_environment(), build_variables(spec))
        facts: dict[str, Any] = {
            "layout": LAYOUT,
            "go": format_go_version(build.go_version(required_go())),
            "gomod": gomod_path(spec),
            "source": build.source_digest(spec.workspace),
            "wrapper": build.wrapper_digest(),
            "settings": {name: environ.get(name) for name in GO_SETTINGS},
            "build_env": hashlib.sha256(
                json.dumps(dict(build_variables(spec)), sort_keys=True).encode()
            ).hexdigest(),
        }
        digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
        return f"go-{digest[:16]}"

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        """Copy the module, fit go.mod, add the wrapper, ``go build`` it into ``bin/job``."""
        go = required_go()
        installed = build.go_version(go)
        source = env_dir / "src"
        try:
            prepared = build.prepare_source(spec.workspace, gomod_path(spec), source, installed)
            for note in prepared.gomod.notes:
                log(note)
            environ = build.go_environment(build.server_environment(), build_variables(spec))
            how = "vendor/" if prepared.vendored else f"GOPROXY={environ['GOPROXY']}"
            log(f"building with Go {format_go_version(installed)}; dependencies from {how}")
            binary = env_dir / "bin" / "job"
            command = build.build_command(go, prepared, binary.absolute())
            tail = run_logged(command, environ, log, cwd=prepared.module_dir)
            if tail is not None:
                raise DeployError(
                    diagnosis.build_failure(tail, prepared.gomod, installed), "\n".join(tail)
                )
            requested = prepared.gomod.requested
            if requested is not None and requested[:2] >= (1, 22) > installed[:2]:
                log("checking for closures over loop variables (Go 1.22 changed their meaning)")
                command = build.loopvar_command(go, prepared)
                tail = run_logged(command, environ, log, cwd=prepared.module_dir)
                if tail is not None:
                    problem = "gives every loop one variable where Go 1.22 gives one per turn"
                    raise DeployError(
                        diagnosis.version_sentence(prepared.gomod, installed, problem),
                        "\n".join(tail),
                    )
        finally:
            shutil.rmtree(source, ignore_errors=True)
        log(f"built {binary.name} ({binary.stat().st_size // 1024} KiB)")

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        """The job's binary, serving on ``127.0.0.1:port``."""
        binary = env_dir.absolute() / "bin" / "job"
        return [str(binary), "-host", "127.0.0.1", "-port", str(port)]

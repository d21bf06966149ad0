"""Turning a supervised replica into a running process: recipe, command, environment, pid file."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import ProcessRecipe, describe_kinds
from racetrack_plugins.local_infra.environments import Environments
from racetrack_plugins.local_infra.processes import JobProcess
from racetrack_plugins.local_infra.records import Records, ReplicaRecord
from racetrack_plugins.local_infra.supervisor import ERROR_TAIL_LINES, Supervised

#: Variables of the server's own environment that a job inherits; everything else comes from
#: the JobSpec, so that no server secret leaks into a job.
INHERITED = ("PATH", "HOME", "LANG", "TMPDIR")


def recipe_of(spec: JobSpec) -> ProcessRecipe:
    """The process recipe of the spec's job type; DeployError when it has none.

    The manifest validation refuses such a pair first, with the targets that can run the job
    type; this is the driver's own guard, for callers that build a spec themselves.
    """
    recipe = spec.job_type.recipes.process
    if recipe is None:
        raise DeployError(
            f"job type '{spec.job_type.ref}' cannot run on the local target: it offers no "
            f"process recipe (it offers {describe_kinds(spec.job_type.recipes.kinds())} "
            "recipes). Deploy the job to a target that accepts what it offers"
        )
    return recipe


def job_environment(job_env: Mapping[str, str], port: int) -> dict[str, str]:
    """A minimal base from the server's environment, the job's own variables, and JOB_PORT."""
    base = {name: os.environ[name] for name in INHERITED if name in os.environ}
    base.setdefault("PATH", os.defpath)
    base.setdefault("LANG", "C.UTF-8")
    return {**base, **job_env, "JOB_PORT": str(port)}


class Launcher:
    """Starts the process of a replica and writes its pid file."""

    def __init__(self, environments: Environments, records: Records) -> None:
        self._environments = environments
        self._records = records

    def launch(self, entry: Supervised) -> None:
        """Start ``entry``'s process on ``entry.port``; raise DeployError when it cannot start.

        The command line goes to the job's log; the environment never does.
        """
        spec = entry.spec
        recipe = recipe_of(spec)
        env_dir = self._environments.path(recipe, spec)
        if not self._environments.is_ready(env_dir):
            raise DeployError(
                f"the environment of {spec.name} {spec.version} ({env_dir.name}) is not built: "
                "prepare the job before starting it"
            )
        try:
            command = tuple(recipe.command(spec, env_dir, entry.port))
        except DeployError:
            raise
        except Exception as error:
            raise DeployError(
                f"job type '{spec.job_type.name}' could not say how to run {spec.name} "
                f"{spec.version}: {type(error).__name__}: {error}"
            ) from error
        entry.log.rotate_if_needed()
        entry.log.note(f"starting {entry.replica.id} on port {entry.port}: {shlex.join(command)}")
        try:
            process = JobProcess.spawn(
                command, spec.workspace, job_environment(spec.env, entry.port), entry.log.path
            )
        except OSError as error:
            entry.log.note(f"could not start {entry.replica.id}: {error}")
            raise DeployError(
                f"cannot start {spec.name} {spec.version}: {error}",
                log_tail=entry.log.tail(ERROR_TAIL_LINES),
            ) from error
        entry.process, entry.command, entry.served = process, command, False
        self._records.save(
            ReplicaRecord(
                entry.replica, entry.port, process.pid, process.started, spec.state_dir, command
            )
        )

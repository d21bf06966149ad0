"""Job environments (virtualenvs, compiled binaries...) under ``<home>/envs``, shared by key.

A job type's ``ProcessRecipe`` names what an environment depends on with ``environment_key``;
every job version with the same key shares ``<home>/envs/<key>``. An environment is built in a
temporary sibling folder and renamed into place with a marker file written last, so a failed
or interrupted build never leaves a folder that looks usable. Builds of one key are serialized
by a lock file (``flock``), which also keeps two servers on one home apart.
"""

from __future__ import annotations

import fcntl
import re
import secrets
import shutil
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from racetrack_core.infrastructure import BuildLog, DeployError, JobSpec
from racetrack_core.recipes import ProcessRecipe

MARKER = ".racetrack-complete"
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
LOG_TAIL_LINES = 30


class Environments:
    """The environments folder of one local target home."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, recipe: ProcessRecipe, spec: JobSpec) -> Path:
        """Where the environment of ``spec`` lives (whether or not it is built)."""
        key = recipe.environment_key(spec)
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise DeployError(
                f"job type '{spec.job_type.name}' gave the environment key {key!r}: a key is "
                "letters, digits, dots, hyphens and underscores (a digest, like 'py311-3f2a9c')"
            )
        return self.root / key

    def is_ready(self, env_dir: Path) -> bool:
        """Whether ``env_dir`` was built completely."""
        return (env_dir / MARKER).is_file()

    def prepare(self, recipe: ProcessRecipe, spec: JobSpec, log: BuildLog) -> Path:
        """Build the environment of ``spec`` unless a complete one exists; return its folder.

        ``spec.no_cache`` rebuilds it anyway. A failed build raises DeployError carrying the
        last lines of build output and leaves no folder behind.
        """
        env_dir = self.path(recipe, spec)
        with self._lock(env_dir.name):
            if self.is_ready(env_dir) and not spec.no_cache:
                log(f"reusing the environment {env_dir.name}")
                return env_dir
            self._sweep(env_dir.name)
            log(f"building the environment {env_dir.name}")
            building = self.root / f".build-{env_dir.name}-{secrets.token_hex(4)}"
            building.mkdir()
            try:
                self._build(recipe, spec, building, log)
                (building / MARKER).write_text(f"{spec.job_type.name}:{spec.job_type.version}\n")
                self._swap(building, env_dir)
            finally:
                shutil.rmtree(building, ignore_errors=True)
            log(f"built the environment {env_dir.name}")
            return env_dir

    def _build(self, recipe: ProcessRecipe, spec: JobSpec, folder: Path, log: BuildLog) -> None:
        recent: deque[str] = deque(maxlen=LOG_TAIL_LINES)

        def logged(line: str) -> None:
            recent.append(line)
            log(line)

        try:
            recipe.build(spec, folder, logged)
        except DeployError as error:
            if error.log_tail:
                raise
            raise DeployError(str(error), log_tail="\n".join(recent)) from error
        except Exception as error:
            raise DeployError(
                f"building the environment of {spec.name} {spec.version} failed: "
                f"{type(error).__name__}: {error}",
                log_tail="\n".join(recent),
            ) from error

    def _swap(self, built: Path, env_dir: Path) -> None:
        """Rename ``built`` to ``env_dir``, moving an older build out of the way first.

        A running job keeps the files of the old build open, so removing it does not disturb it.
        """
        old = self.root / f".old-{env_dir.name}-{secrets.token_hex(4)}"
        if env_dir.exists():
            env_dir.rename(old)
        built.rename(env_dir)
        shutil.rmtree(old, ignore_errors=True)

    def _sweep(self, key: str) -> None:
        """Remove what builds of ``key`` that were interrupted (a killed server) left behind."""
        for stale in (*self.root.glob(f".build-{key}-*"), *self.root.glob(f".old-{key}-*")):
            shutil.rmtree(stale, ignore_errors=True)
        incomplete = self.root / key
        if incomplete.exists() and not self.is_ready(incomplete):
            shutil.rmtree(incomplete, ignore_errors=True)

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        with (locks / f"{key}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

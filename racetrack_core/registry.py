"""Registries of what plugins provide: job types (with versions) and infrastructure targets.

Plugins fill them through the registration hooks (``register_job_types(registry)``); the
registry checks every name and version as it arrives and rejects a malformed or duplicate one
with a sentence naming the plugin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from racetrack_core import versions
from racetrack_core.baseimages import base_image_of
from racetrack_core.errors import NotFoundError, RegistrationError
from racetrack_core.recipes import (
    ArtifactKind,
    ImageRecipe,
    ProcessRecipe,
    Recipes,
    debian_base_of,
    describe_kinds,
)

if TYPE_CHECKING:
    from racetrack_core.infrastructure import InfrastructureDriver, TargetContext

#: What a target registers: makes its driver when a server starts using the target.
DriverFactory = Callable[["TargetContext"], "InfrastructureDriver"]
#: A target's review of a valid manifest: one sentence per field it will not honour (warnings).
ManifestReview = Callable[[Mapping[str, Any]], Iterable[str]]

NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True)
class JobType:
    """One version of a job type, such as ``python3:1.0.0``.

    ``extra_schema`` is the JSON-schema fragment that validates the manifest's
    ``jobtype_extra`` section for this job type (None accepts no ``jobtype_extra`` fields).
    ``recipes`` are what it offers infrastructure targets, by kind of artifact (a process
    recipe, an image recipe; see ``racetrack_core.recipes``): a target runs the job type when
    it accepts one of those kinds.
    ``options`` holds whatever else the plugin wants to hand its own build and run code.
    ``original_versions`` (a version or a wildcard such as ``2.*``) names the versions of the
    original Racetrack's job type of the same name whose jobs this version runs unchanged: a
    manifest that pins one of them, and no installed version matches, gets this one.
    """

    name: str
    version: str
    extra_schema: Mapping[str, Any] | None = None
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    recipes: Recipes = field(default_factory=Recipes)
    original_versions: str = ""

    @property
    def ref(self) -> str:
        """The ``name:version`` reference that a manifest's ``jobtype`` field resolves to."""
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class InfrastructureTarget:
    """A place where jobs are built and run, such as ``local``, ``docker`` or ``kubernetes``.

    ``driver`` makes the object that builds, runs and reports on jobs for this target: a
    callable taking a ``racetrack_core.infrastructure.TargetContext`` and returning an
    ``InfrastructureDriver``. It is called once, when a server starts using the target.
    ``accepts`` names the kinds of artifact (``racetrack_core.recipes.ArtifactKind``) the
    target can run: a job type runs on it when it offers a recipe of one of those kinds.
    ``review`` (optional) reads a valid manifest and returns a sentence for each field the
    target will not honour (``replicas`` on a target that runs one instance, say): the
    deployment goes on with those as warnings.
    """

    name: str
    driver: DriverFactory
    accepts: frozenset[ArtifactKind] = frozenset()
    description: str = ""
    plugin: str = ""
    review: ManifestReview | None = None

    def can_run(self, job_type: JobType) -> bool:
        """Whether ``job_type`` offers a recipe of a kind this target accepts."""
        return bool(self.accepts & job_type.recipes.kinds())


class JobTypeRegistry:
    """Job types by name and version, resolved as exact, ``latest`` or a wildcard."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], JobType] = {}

    def registrar(self, plugin: str) -> JobTypeRegistrar:
        """A view of this registry that records ``plugin`` as the author of what it registers."""
        return JobTypeRegistrar(self, plugin)

    def add(self, job_type: JobType) -> None:
        """Add a job type, rejecting a malformed or duplicate one with a clear sentence."""
        who = f"plugin '{job_type.plugin}'" if job_type.plugin else "a plugin"
        if not isinstance(job_type.name, str) or not NAME.fullmatch(job_type.name):
            raise RegistrationError(
                f"{who} registered a job type named {job_type.name!r}: a name is lower-case "
                "letters, digits and single hyphens, starting with a letter (like 'python3')"
            )
        if not isinstance(job_type.version, str) or not versions.is_semver(job_type.version):
            raise RegistrationError(
                f"{who} registered job type '{job_type.name}' with version "
                f"{job_type.version!r}: a version is a semantic version (like 1.0.0)"
            )
        if job_type.extra_schema is not None and not isinstance(job_type.extra_schema, Mapping):
            raise RegistrationError(
                f"{who} registered job type '{job_type.ref}' with an extra_schema that is not "
                "a JSON-schema object"
            )
        _check_recipes(job_type.recipes, f"{who} registered job type '{job_type.ref}' with")
        original = job_type.original_versions
        if original and (original == "latest" or not versions.is_pattern(original)):
            raise RegistrationError(
                f"{who} registered job type '{job_type.ref}' with original_versions "
                f"'{original}': give a version or a wildcard such as '2.*'"
            )
        base = debian_base_of(job_type.recipes.image)
        if base is not None:
            base_image_of(base, job_type.plugin)
        key = (job_type.name, job_type.version)
        if key in self._types:
            first = self._types[key].plugin
            raise RegistrationError(
                f"{who} registered job type '{job_type.ref}', which plugin '{first}' already "
                "registered: uninstall one of them, or block it with RACETRACK_DISABLE_PLUGINS"
            )
        self._types[key] = job_type

    def __iter__(self) -> Iterator[JobType]:
        return iter(sorted(self._types.values(), key=lambda t: (t.name, versions.parse(t.version))))

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        """Names of the installed job types, sorted."""
        return sorted({name for name, _ in self._types})

    def versions_of(self, name: str) -> list[str]:
        """Versions of one job type, lowest first."""
        found = [version for type_name, version in self._types if type_name == name]
        return sorted(found, key=versions.parse)

    def resolve(self, reference: str) -> JobType:
        """Find the job type that a manifest's ``jobtype`` (``name[:version]``) selects.

        The version may be exact, ``latest`` (the default when it is left out) or a wildcard
        such as ``1.*`` or ``1.x``. Raise NotFoundError naming what is installed.
        """
        name, _, pattern = reference.partition(":")
        pattern = pattern or "latest"
        known = self.versions_of(name)
        if not known:
            installed = ", ".join(self.names()) or "none"
            raise NotFoundError(f"unknown job type '{name}'. Installed: {installed}")
        if not versions.is_pattern(pattern):
            raise NotFoundError(
                f"job type version '{pattern}' is not a version, 'latest' or a wildcard such "
                f"as '1.*'. Installed versions of {name}: {', '.join(known)}"
            )
        chosen = versions.resolve(pattern, known)
        if chosen is None:
            stand_in = self._stand_in(name, pattern)
            if stand_in is not None:
                return stand_in
            raise NotFoundError(
                f"no version of job type '{name}' matches '{pattern}'. "
                f"Installed versions: {', '.join(known)}"
            )
        return self._types[(name, chosen)]

    def _stand_in(self, name: str, pattern: str) -> JobType | None:
        """The highest version of ``name`` that runs the original Racetrack's versions that
        ``pattern`` selects (exactly, or by the wildcards' common prefix)."""
        found = [
            job_type
            for (type_name, _), job_type in self._types.items()
            if type_name == name
            and job_type.original_versions
            and versions.overlap(pattern, job_type.original_versions)
        ]
        return max(found, key=lambda t: versions.parse(t.version), default=None)


class JobTypeRegistrar:
    """What a plugin's ``register_job_types`` hook receives: registers on the plugin's behalf."""

    def __init__(self, registry: JobTypeRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def register(
        self,
        name: str,
        version: str,
        *,
        extra_schema: Mapping[str, Any] | None = None,
        description: str = "",
        options: Mapping[str, Any] | None = None,
        recipes: Recipes | None = None,
        original_versions: str = "",
    ) -> JobType:
        """Register one version of a job type and return it.

        ``recipes`` says how its jobs are built for each kind of target (none: the job type
        validates manifests but no target can run its jobs). ``original_versions``: the
        original Racetrack's versions of this job type whose jobs it runs (see JobType).
        """
        job_type = JobType(
            name=name,
            version=version,
            extra_schema=extra_schema,
            description=description,
            options=dict(options or {}),
            plugin=self.plugin,
            recipes=recipes if recipes is not None else Recipes(),
            original_versions=original_versions,
        )
        self._registry.add(job_type)
        return job_type


class InfrastructureRegistry:
    """Infrastructure targets by name."""

    def __init__(self) -> None:
        self._targets: dict[str, InfrastructureTarget] = {}

    def registrar(self, plugin: str) -> InfrastructureRegistrar:
        """A view of this registry that records ``plugin`` as the author of what it registers."""
        return InfrastructureRegistrar(self, plugin)

    def add(self, target: InfrastructureTarget) -> None:
        """Add a target, rejecting a malformed or duplicate name with a clear sentence."""
        who = f"plugin '{target.plugin}'" if target.plugin else "a plugin"
        if not isinstance(target.name, str) or not NAME.fullmatch(target.name):
            raise RegistrationError(
                f"{who} registered an infrastructure target named {target.name!r}: a name is "
                "lower-case letters, digits and single hyphens, starting with a letter"
            )
        unknown = [kind for kind in target.accepts if not isinstance(kind, ArtifactKind)]
        if unknown or not target.accepts:
            raise RegistrationError(
                f"{who} registered infrastructure target '{target.name}' accepting "
                f"{sorted(map(repr, target.accepts))}: accept one or more of "
                f"{', '.join(repr(str(kind)) for kind in ArtifactKind)} "
                "(racetrack_core.recipes.ArtifactKind)"
            )
        if not callable(target.driver):
            raise RegistrationError(
                f"{who} registered infrastructure target '{target.name}' whose driver is not "
                "callable: give a class or function that takes a TargetContext"
            )
        if target.name in self._targets:
            first = self._targets[target.name].plugin
            raise RegistrationError(
                f"{who} registered infrastructure target '{target.name}', which plugin "
                f"'{first}' already registered: uninstall one of them, or block it with "
                "RACETRACK_DISABLE_PLUGINS"
            )
        self._targets[target.name] = target

    def __iter__(self) -> Iterator[InfrastructureTarget]:
        return iter(sorted(self._targets.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._targets)

    def names(self) -> list[str]:
        """Names of the installed targets, sorted."""
        return sorted(self._targets)

    def get(self, name: str) -> InfrastructureTarget:
        """Find a target by name; raise NotFoundError naming the installed ones."""
        try:
            return self._targets[name]
        except KeyError:
            installed = ", ".join(self.names()) or "none"
            raise NotFoundError(
                f"unknown infrastructure target '{name}'. Installed: {installed}"
            ) from None

    def runners_of(self, job_type: JobType) -> list[str]:
        """Names of the installed targets that can run ``job_type``, sorted."""
        return [target.name for target in self if target.can_run(job_type)]

    def review(self, target_name: str, manifest: Mapping[str, Any]) -> list[str]:
        """The target's warnings about a valid manifest (none for an unknown target)."""
        target = self._targets.get(target_name)
        if target is None or target.review is None:
            return []
        try:
            return [str(sentence) for sentence in target.review(manifest)]
        except Exception as error:
            raise RegistrationError(
                f"the manifest review of infrastructure target '{target_name}' (plugin "
                f"'{target.plugin}') failed: {type(error).__name__}: {error}"
            ) from error

    def mismatch(self, job_type: JobType, target_name: str) -> str | None:
        """Why ``target_name`` cannot run ``job_type`` (a sentence naming the targets that
        can), or None when it can or when the target is not installed."""
        target = self._targets.get(target_name)
        if target is None or target.can_run(job_type):
            return None
        offered = job_type.recipes.kinds()
        if not offered:
            return (
                f"job type '{job_type.ref}' offers no recipe (process or image), so no "
                f"infrastructure target can run it: its plugin '{job_type.plugin}' must "
                "register recipes (see docs/plugins.md)"
            )
        runners = self.runners_of(job_type)
        where = (
            f"Targets that can run it: {', '.join(runners)}"
            if runners
            else f"No installed target accepts {describe_kinds(offered)} recipes; install one"
        )
        return (
            f"job type '{job_type.ref}' cannot run on infrastructure target '{target.name}': "
            f"the target runs {describe_kinds(target.accepts)} recipes and the job type offers "
            f"{describe_kinds(offered)} recipes only. {where}"
        )


class InfrastructureRegistrar:
    """What ``register_infrastructure_targets`` receives: registers on the plugin's behalf."""

    def __init__(self, registry: InfrastructureRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def register(
        self,
        name: str,
        driver: DriverFactory,
        *,
        accepts: Iterable[ArtifactKind],
        description: str = "",
        review: ManifestReview | None = None,
    ) -> InfrastructureTarget:
        """Register one infrastructure target, which runs the recipe kinds in ``accepts``;
        ``review`` names the manifest fields it will not honour (see InfrastructureTarget)."""
        target = InfrastructureTarget(
            name=name,
            driver=driver,
            accepts=frozenset(accepts),
            description=description,
            plugin=self.plugin,
            review=review,
        )
        self._registry.add(target)
        return target


def _check_recipes(recipes: object, context: str) -> None:
    """Reject recipes that do not follow the protocols, naming what is wrong."""
    if not isinstance(recipes, Recipes):
        raise RegistrationError(
            f"{context} recipes of type {type(recipes).__name__}: give a "
            "racetrack_core.recipes.Recipes"
        )
    for kind, recipe, protocol in (
        ("process", recipes.process, ProcessRecipe),
        ("image", recipes.image, ImageRecipe),
    ):
        if recipe is not None and not isinstance(recipe, protocol):
            raise RegistrationError(
                f"{context} a {kind} recipe of type {type(recipe).__name__} that lacks the "
                f"methods of racetrack_core.recipes.{protocol.__name__}"
            )

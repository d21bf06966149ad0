"""Base images built from Debian packages, for sites (and machines) that cannot pull any image.

A job type whose image recipe starts ``FROM`` an image declares it in one of two ways: its
image recipe has a ``debian_base`` (``racetrack_core.recipes.DebianBase``), or its plugin
implements the ``register_base_images(registry)`` hook. Both say "my recipe needs a base image
NAME made of these Debian packages". ``racetrack images bootstrap`` then builds every declared
image with debootstrap and imports it into the Docker engine under NAME::

    image recipe's debian_base ─┐
    plugin ──register_base_images──▶ BaseImageRegistry ──▶ bootstrap.plan() ──▶ bootstrap.run()
                                       (BaseImageSpec)       (cache, engine)     (debootstrap,
                                                                                  trim, import)

Modules: ``aptsources`` (which Debian mirror to use), ``rootfs`` (debootstrap, trimming, the
site's CA bundle), ``engine`` (the docker CLI), ``bootstrap`` (the cache and the phases).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from racetrack_core.errors import RacetrackError, RegistrationError
from racetrack_core.recipes import DebianBase, Recipes, debian_base_of


class RegisteredJobType(Protocol):
    """What declaring base images reads of a job type (``registry.JobType`` has it)."""

    @property
    def plugin(self) -> str: ...

    @property
    def recipes(self) -> Recipes: ...


class HookImplementations(Protocol):
    """What declaring base images needs of a plugin manager (``PluginManager`` has it)."""

    def implementations(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]: ...

    @property
    def job_types(self) -> Iterable[RegisteredJobType]: ...


#: An image reference that ``docker import`` accepts: a repository path and an optional tag.
IMAGE_NAME = re.compile(
    r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?"
)
#: A Debian package name (Debian policy 5.6.1), and a suite (codename) such as bookworm.
PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
SUITE = re.compile(r"[a-z][a-z0-9-]*")


class BaseImageError(RacetrackError):
    """A base image cannot be declared, built or imported; the message says what to do."""


@dataclass(frozen=True)
class BaseImageSpec:
    """One base image a job type's image recipe builds ``FROM``.

    ``name`` is the image reference the recipe expects (``racetrack/python3-base:bookworm``);
    ``packages`` are the Debian packages installed on top of a minimal Debian ``suite``.
    ``plugin`` is filled in by the registry with the plugin that declared the image.
    """

    name: str
    packages: tuple[str, ...]
    suite: str = "bookworm"
    plugin: str = ""


class BaseImageRegistry:
    """The base images every plugin declared, by image name."""

    def __init__(self) -> None:
        self._specs: dict[str, BaseImageSpec] = {}

    def registrar(self, plugin: str) -> BaseImageRegistrar:
        """A view of this registry that records ``plugin`` as the author of what it declares."""
        return BaseImageRegistrar(self, plugin)

    def add(self, spec: BaseImageSpec) -> None:
        """Add a declaration, rejecting a malformed or duplicate one with a clear sentence."""
        who = f"plugin '{spec.plugin}'" if spec.plugin else "a plugin"
        if not isinstance(spec.name, str) or not IMAGE_NAME.fullmatch(spec.name):
            raise RegistrationError(
                f"{who} declared a base image named {spec.name!r}: a name is an image reference "
                "in lower case, like 'racetrack/python3-base:bookworm'"
            )
        if not spec.packages:
            raise RegistrationError(f"{who} declared base image '{spec.name}' with no package")
        for package in spec.packages:
            if not isinstance(package, str) or not PACKAGE.fullmatch(package):
                raise RegistrationError(
                    f"{who} declared base image '{spec.name}' with package {package!r}, "
                    "which is not a Debian package name (like 'python3-venv')"
                )
        if not isinstance(spec.suite, str) or not SUITE.fullmatch(spec.suite):
            raise RegistrationError(
                f"{who} declared base image '{spec.name}' with suite {spec.suite!r}: a suite "
                "is a Debian codename, like 'bookworm'"
            )
        if spec.name in self._specs:
            first = self._specs[spec.name]
            if (first.packages, first.suite) == (spec.packages, spec.suite):
                return  # two job types on one base image: one declaration is enough
            raise RegistrationError(
                f"{who} declared base image '{spec.name}', which plugin '{first.plugin}' "
                "declared already with other packages: give one of them another name"
            )
        self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[BaseImageSpec]:
        return iter(sorted(self._specs.values(), key=lambda spec: spec.name))

    def __len__(self) -> int:
        return len(self._specs)

    def select(self, names: Iterable[str]) -> list[BaseImageSpec]:
        """The declarations of ``names`` (all of them when empty); an unknown name is an error."""
        wanted = list(names)
        if not wanted:
            return list(self)
        unknown = [name for name in wanted if name not in self._specs]
        if unknown:
            known = ", ".join(self._specs) or "none"
            raise BaseImageError(
                f"no plugin declares base image {', '.join(map(repr, unknown))}. Declared: {known}"
            )
        return [self._specs[name] for name in dict.fromkeys(wanted)]


class BaseImageRegistrar:
    """What a plugin's ``register_base_images`` hook receives: declares on the plugin's behalf."""

    def __init__(self, registry: BaseImageRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def register(
        self, name: str, packages: Iterable[str], *, suite: str = "bookworm"
    ) -> BaseImageSpec:
        """Declare that this plugin's image recipes need image ``name`` made of ``packages``."""
        spec = BaseImageSpec(name=name, packages=tuple(packages), suite=suite, plugin=self.plugin)
        self._registry.add(spec)
        return spec


def base_image_of(base: object, plugin: str) -> BaseImageSpec:
    """The declaration an image recipe's ``debian_base`` makes, checked as the hook's are.

    Raises RegistrationError, naming ``plugin``, for anything but a well-formed DebianBase.
    """
    if not isinstance(base, DebianBase):
        raise RegistrationError(
            f"plugin '{plugin}' has an image recipe whose debian_base is a "
            f"{type(base).__name__}: give a racetrack_core.recipes.DebianBase"
        )
    packages: object = base.packages  # a plugin may give a string by mistake
    if isinstance(packages, str):
        raise RegistrationError(
            f"plugin '{plugin}' declared base image '{base.image}' with packages "
            f"{base.packages!r}: give a tuple of package names, like ('python3',)"
        )
    spec = BaseImageSpec(base.image, tuple(base.packages), base.suite, plugin)
    BaseImageRegistry().add(spec)
    return spec


def declared_base_images(manager: HookImplementations) -> BaseImageRegistry:
    """Every base image the loaded plugins need: the ones their job types' image recipes
    declare (``debian_base``), then the ones their ``register_base_images`` hooks declare."""
    registry = BaseImageRegistry()
    for job_type in manager.job_types:
        base = debian_base_of(job_type.recipes.image)
        if base is not None:
            registry.add(base_image_of(base, job_type.plugin))
    for plugin, call in manager.implementations("register_base_images"):
        call(registry=registry.registrar(plugin))
    return registry

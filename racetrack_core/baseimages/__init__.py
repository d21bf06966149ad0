"""Base images built from Debian packages, for sites (and machines) that cannot pull any image.

A job type whose image recipe starts ``FROM`` an image declares it here, through the
``register_base_images(registry)`` hook: "my recipe needs a base image NAME made of these
Debian packages". ``racetrack images bootstrap`` then builds every declared image with
debootstrap and imports it into the Docker engine under NAME::

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


class HookImplementations(Protocol):
    """What declaring base images needs of a plugin manager (``PluginManager`` has it)."""

    def implementations(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]: ...


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


def declared_base_images(manager: HookImplementations) -> BaseImageRegistry:
    """Ask every loaded plugin for the base images it needs, plugin by plugin."""
    registry = BaseImageRegistry()
    for plugin, call in manager.implementations("register_base_images"):
        call(registry=registry.registrar(plugin))
    return registry

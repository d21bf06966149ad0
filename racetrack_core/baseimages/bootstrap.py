"""``racetrack images bootstrap``: plan and build the declared base images, with a cache.

Each image is keyed by a hash of what decides its content (suite, packages, mirror, CA
bundle), never by its name, so images with the same inputs share one root folder. The cache
folder (setting ``base_images_cache``) keeps ``roots/<key>/`` (the finished root) and
``logs/<key>.log`` (debootstrap's output); images carry the key as a label. A second run finds
the image with the right key and does nothing, or finds the root and only imports it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from racetrack_core.baseimages import BaseImageError, BaseImageSpec, aptsources, rootfs
from racetrack_core.baseimages.engine import DockerEngine

if TYPE_CHECKING:
    from racetrack_core.settings import Settings

KEY_LABEL = "racetrack.base-image.key"
#: Bumped when the way roots are made changes, so that old cached roots are not reused.
RECIPE_VERSION = 1

Report = Callable[[str], None]


class State(StrEnum):
    """Where one base image stands before a run."""

    PRESENT = "present"  # the engine has it, built from the same inputs: nothing to do
    CACHED = "cached"  # its root is in the cache: import it (seconds)
    MISSING = "missing"  # build it with debootstrap, then import it
    OUTDATED = "outdated"  # the engine has an image of that name from other inputs: rebuild


@dataclass(frozen=True)
class BootstrapOptions:
    """What a run needs besides the declarations (settings, overridden by command options).

    ``mirror`` empty means: the mirror this host's apt uses for the suite (``apt_dir``).
    """

    cache: Path
    mirror: str = ""
    apt_dir: Path = aptsources.APT_DIR
    ca_bundle: Path | None = None
    docker_cli: str = "docker"
    debootstrap: str = "debootstrap"
    force: bool = False


def options_from_settings(settings: Settings, **overrides: Any) -> BootstrapOptions:
    """The options that the ``base_images_*`` settings give; ``overrides`` that are not None
    (command-line options, a test's own cache) replace them."""
    values: dict[str, Any] = {
        "cache": Path(settings.base_images_cache),
        "mirror": settings.base_images_mirror,
        "ca_bundle": Path(settings.base_images_ca_bundle)
        if settings.base_images_ca_bundle
        else None,
        "docker_cli": settings.base_images_docker_cli,
    }
    values.update({name: value for name, value in overrides.items() if value is not None})
    return BootstrapOptions(**values)


@dataclass(frozen=True)
class PlannedImage:
    """One base image, its cache key and what a run will do with it."""

    spec: BaseImageSpec
    key: str
    mirror: str
    mirror_origin: str
    state: State
    root: Path = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.spec.name,
            "suite": self.spec.suite,
            "packages": list(self.spec.packages),
            "plugin": self.spec.plugin,
            "key": self.key,
            "state": str(self.state),
        }


def cache_key(spec: BaseImageSpec, mirror: str, ca_bundle: bytes | None) -> str:
    """A short digest of everything an image's content depends on (not its name)."""
    inputs = {
        "recipe": RECIPE_VERSION,
        "suite": spec.suite,
        "packages": sorted(set(spec.packages)),
        "mirror": mirror.rstrip("/"),
        "ca_bundle": hashlib.sha256(ca_bundle).hexdigest() if ca_bundle else None,
    }
    encoded = json.dumps(inputs, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def plan(
    specs: Sequence[BaseImageSpec], options: BootstrapOptions, engine: DockerEngine
) -> list[PlannedImage]:
    """Where each image stands, from the cache and the engine's images (``force`` aside)."""
    bundle = rootfs.read_ca_bundle(options.ca_bundle) if options.ca_bundle else None
    mirrors: dict[str, tuple[str, str]] = {}
    planned = []
    for spec in specs:
        if spec.suite not in mirrors:
            mirrors[spec.suite] = _mirror(spec.suite, options)
        mirror, origin = mirrors[spec.suite]
        key = cache_key(spec, mirror, bundle)
        root = options.cache / "roots" / key
        labels = engine.labels(spec.name)
        if labels is not None and labels.get(KEY_LABEL) == key:
            state = State.PRESENT
        elif (root / "etc/os-release").exists():
            state = State.CACHED
        else:
            state = State.OUTDATED if labels is not None else State.MISSING
        planned.append(PlannedImage(spec, key, mirror, origin, state, root))
    return planned


def run(
    specs: Sequence[BaseImageSpec], options: BootstrapOptions, report: Report
) -> list[PlannedImage]:
    """Build and import every image of ``specs`` that the engine lacks; report each phase."""
    if os.geteuid() != 0:
        raise BaseImageError(
            "building base images needs root (debootstrap installs packages and chroots, and "
            "the roots hold files only root may read): run it as root, for example with sudo"
        )
    engine = DockerEngine(options.docker_cli)
    version = engine.check()
    planned = plan(specs, options, engine)
    if options.force:
        work = planned
    else:
        work = [image for image in planned if image.state is not State.PRESENT]
        for image in planned:
            if image.state is State.PRESENT:
                report(f"{image.spec.name}: present (key {image.key}), nothing to do")
    if not work:
        return planned
    debootstrap = options.debootstrap
    if options.force or any(image.state is not State.CACHED for image in work):
        found = shutil.which(debootstrap)
        if found is None:
            raise BaseImageError(f"'{debootstrap}' is not installed: apt-get install debootstrap")
        debootstrap = found
    bundle = rootfs.read_ca_bundle(options.ca_bundle) if options.ca_bundle else None
    report(f"Docker engine {version}; cache {options.cache}")
    with _locked(options.cache):
        built: set[str] = set()
        for image in work:
            name = image.spec.name
            rebuild = options.force and image.key not in built
            if rebuild or not (image.root / "etc/os-release").exists():
                _build(image, options.cache, debootstrap, bundle, report)
                built.add(image.key)
            else:
                report(f"{name}: root found in the cache (key {image.key})")
            started = time.monotonic()
            report(f"{name}: importing into the engine")
            labels = {
                "racetrack.base-image": name,
                KEY_LABEL: image.key,
                "racetrack.base-image.suite": image.spec.suite,
                "racetrack.base-image.packages": ",".join(image.spec.packages),
            }
            image_id = engine.import_root(image.root, name, labels)
            report(f"{name}: imported as {image_id[:19]} in {_seconds(started)}")
    return planned


def _build(
    image: PlannedImage, cache: Path, debootstrap: str, bundle: bytes | None, report: Report
) -> None:
    spec = image.spec
    partial = image.root.with_name(image.key + ".partial")
    log = cache / "logs" / f"{image.key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    rootfs.remove_root(partial)
    rootfs.remove_root(image.root)
    partial.mkdir(parents=True)
    started = time.monotonic()
    report(
        f"{spec.name}: debootstrap {spec.suite} with {', '.join(spec.packages)} "
        f"(mirror from {image.mirror_origin}; output in {log})"
    )
    try:
        rootfs.debootstrap(debootstrap, partial, spec.packages, spec.suite, image.mirror, log)
        report(f"{spec.name}: debootstrap done in {_seconds(started)}")
        rootfs.trim(partial)
        report(f"{spec.name}: removed apt lists, documentation and manual pages")
        if bundle is not None:
            rootfs.add_ca_bundle(partial, bundle)
            report(f"{spec.name}: added the site's CA bundle to the trust store")
    except BaseException:
        rootfs.remove_root(partial)
        raise
    partial.rename(image.root)


def _mirror(suite: str, options: BootstrapOptions) -> tuple[str, str]:
    if options.mirror:
        mirror, origin = options.mirror.rstrip("/"), "the mirror option or setting"
        if not mirror.startswith(aptsources.FETCHABLE):
            raise BaseImageError(
                f"the mirror {mirror!r} is not an http://, https:// or file: URL of a Debian "
                "archive"
            )
    else:
        source = aptsources.find_mirror(suite, options.apt_dir)
        mirror, origin = source.uri, str(source.origin)
    parts = urlsplit(mirror)
    if parts.username or parts.password:
        # The URL stays in the image's /etc/apt/sources.list, and is printed in logs.
        raise BaseImageError(
            f"the Debian mirror from {origin} has a user name or password in its URL, which "
            "would stay in every image's /etc/apt/sources.list: use a mirror that needs none"
        )
    return mirror, origin


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Hold the cache's lock, so that two runs never build into one root at once."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _seconds(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"

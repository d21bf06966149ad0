"""A clean Debian root for the first-run test, made by debootstrap and cached between runs.

The root holds only what a fresh Debian 12 with Python has: ``python3``, ``git``,
``ca-certificates`` (minbase variant) and one ordinary user, ``dev``. It is built once into
``/var/cache/racetrack-ci/firstrun/<key>/root``, where the key hashes everything that goes into
it; each test run works on a throw-away overlay of it, so the cached root stays pristine.

The Debian mirror is the host's own, found as ``racetrack images bootstrap`` finds it (in
``/etc/apt/sources.list`` and ``sources.list.d/``; never written down here), or the one in
``RACETRACK_BASE_IMAGES_MIRROR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from racetrack_core.baseimages import BaseImageError
from racetrack_core.baseimages.aptsources import find_mirror
from racetrack_core.baseimages.rootfs import debootstrap, remove_root

SUITE = "bookworm"
INCLUDE = ("python3", "git", "ca-certificates")
USER = "dev"
UID = 1000
# Bump when the recipe below changes: it is part of the cache key.
RECIPE = "1"
CACHE = Path(os.environ.get("RACETRACK_CI_CACHE", "/var/cache/racetrack-ci")) / "firstrun"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class RootUnavailable(Exception):
    """This machine cannot make the root (not root, no debootstrap, no Debian mirror)."""


def missing_requirement() -> str | None:
    """Why the root cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot and mount)"
    if shutil.which("debootstrap") is None:
        return "needs debootstrap (apt-get install -y debootstrap)"
    if not CA_BUNDLE.is_file():
        return f"needs the host's CA bundle {CA_BUNDLE} (apt-get install -y ca-certificates)"
    if debian_mirror() is None:
        return (
            f"found no Debian mirror for {SUITE} in /etc/apt/sources.list[.d]: "
            "set RACETRACK_BASE_IMAGES_MIRROR to one"
        )
    return None


def debian_mirror() -> str | None:
    """The host's mirror for the suite (as ``racetrack images bootstrap`` finds it), if any."""
    override = os.environ.get("RACETRACK_BASE_IMAGES_MIRROR")
    if override:
        return override.rstrip("/")
    try:
        return find_mirror(SUITE).uri
    except BaseImageError:
        return None


def cached_root() -> Path:
    """The pristine root, built on first use (a lock keeps concurrent runs from racing)."""
    mirror = debian_mirror()
    if mirror is None:
        raise RootUnavailable(missing_requirement() or "no Debian mirror")
    recipe = "\n".join([RECIPE, SUITE, "minbase", ",".join(INCLUDE), USER, str(UID), mirror])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    home = CACHE / key
    home.mkdir(parents=True, exist_ok=True)
    root = home / "root"
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "complete").is_file():
            _build(home, mirror)
    return root


def _build(home: Path, mirror: str) -> None:
    partial = home / "root.partial"
    remove_root(partial)
    debootstrap("debootstrap", partial, INCLUDE, SUITE, mirror, home / "debootstrap.log")
    subprocess.run(
        ["chroot", str(partial), "useradd", "--create-home", "--uid", str(UID),
         "--shell", "/bin/bash", USER],
        check=True,
    )  # fmt: skip
    remove_root(home / "root")
    partial.rename(home / "root")
    (home / "complete").write_text("ok\n")


@dataclass
class Session:
    """A throw-away copy of the root, with /proc and /dev mounted, ready for chroot."""

    path: Path
    mounts: list[Path] = field(default_factory=list)

    def mount(self, *args: str, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(target)], check=True)
        self.mounts.append(target)


@contextlib.contextmanager
def session(root: Path, cache: Path) -> Iterator[Session]:
    """Overlay ``root`` with a tmpfs, mount /proc, /dev and ``cache`` as the user's ``~/.cache``
    (uv's and pip's caches survive between runs), and undo all of it afterwards."""
    work = Path(tempfile.mkdtemp(prefix="racetrack-firstrun-"))
    merged = work / "root"
    current = Session(merged)
    try:
        # Whatever the run writes stays in memory: gone in an instant when unmounted.
        current.mount("-t", "tmpfs", "-o", "size=4g,mode=755", "tmpfs", target=work)
        for name in ("upper", "work", "root"):
            (work / name).mkdir()
        options = f"lowerdir={root},upperdir={work / 'upper'},workdir={work / 'work'}"
        current.mount("-t", "overlay", "overlay", "-o", options, target=merged)
        current.mount("-t", "proc", "proc", target=merged / "proc")
        current.mount("--rbind", "/dev", target=merged / "dev")
        subprocess.run(["mount", "--make-rslave", str(merged / "dev")], check=True)
        cache.mkdir(parents=True, exist_ok=True)
        os.chown(cache, UID, UID)
        current.mount("--bind", str(cache), target=merged / "home" / USER / ".cache")
        os.chown(merged / "home" / USER / ".cache", UID, UID)
        # What a freshly installed machine has: name resolution and the site's CA bundle.
        shutil.copyfile("/etc/resolv.conf", merged / "etc" / "resolv.conf")
        shutil.copyfile(CA_BUNDLE, merged / CA_BUNDLE.relative_to("/"))
        yield current
    finally:
        for target in reversed(current.mounts):
            done = subprocess.run(["umount", "-R", str(target)], check=False, capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-R", "-l", str(target)], check=False)
        remove_root(work)  # refuses while anything is still mounted in it

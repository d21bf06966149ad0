"""A Debian root folder: made by debootstrap, trimmed, and given the site's CAs.

debootstrap installs a minimal Debian (``--variant=minbase``: the required packages and apt)
plus the packages an image needs into a folder; it runs as root and chroots into the folder.
Trimming removes what a base image does not need at run time (apt's package lists, downloaded
packages, documentation, manual pages, message translations) and tells dpkg to leave them out
of later installs too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from racetrack_core.baseimages import BaseImageError

#: Where the site's CAs go inside the root; update-ca-certificates adds them to the trust store.
SITE_CA_FILE = "usr/local/share/ca-certificates/racetrack-site-ca.crt"
#: dpkg's configuration in the root, so that packages installed later stay small as well.
SLIM_DPKG_CONFIG = "etc/dpkg/dpkg.cfg.d/racetrack-slim"
SLIM_DPKG_RULES = """\
# Written by racetrack images bootstrap: base images carry no documentation.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
#: Files that describe the machine the root was made on, emptied by ``trim``.
HOST_FILES = ("etc/hostname", "etc/resolv.conf")
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def debootstrap(
    executable: str, root: Path, packages: Sequence[str], suite: str, mirror: str, log: Path
) -> None:
    """Install Debian ``suite`` with ``packages`` into the empty folder ``root``.

    debootstrap's output goes to ``log``; when it fails, the error quotes its last lines.
    """
    command = [
        executable,
        "--variant=minbase",
        f"--include={','.join(packages)}",
        suite,
        str(root),
        mirror,
    ]
    with log.open("wb") as output:
        result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        tail = " | ".join(lines[-5:]) or "no output"
        raise BaseImageError(
            f"debootstrap of Debian '{suite}' with {', '.join(packages)} failed "
            f"(exit {result.returncode}): {tail}. Its whole output is in {log}"
        )


def trim(root: Path) -> None:
    """Remove apt's lists and downloads, documentation (copyright files stay), manuals and
    message translations (a third of a Python image); empty the host's name and DNS files."""
    _empty(root / "var/lib/apt/lists", keep={"partial", "lock"})
    _empty(root / "var/cache/apt/archives", keep={"partial", "lock"})
    for cache in (root / "var/cache/apt").glob("*.bin"):
        cache.unlink()
    doc = root / "usr/share/doc"
    if doc.is_dir():
        for package in doc.iterdir():
            if package.is_dir() and not package.is_symlink():
                _empty(package, keep={"copyright"})
            elif package.name != "copyright":
                package.unlink()
    _empty(root / "usr/share/man")
    _empty(root / "usr/share/info")
    _empty(root / "usr/share/locale", keep={"locale.alias"})
    # debootstrap copies the host's name and DNS servers in; the engine provides a container's.
    for host_file in HOST_FILES:
        if (root / host_file).is_file():
            (root / host_file).write_bytes(b"")
    for logfile in (root / "var/log").rglob("*.log"):
        if logfile.is_file():
            logfile.write_bytes(b"")
    config = root / SLIM_DPKG_CONFIG
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(SLIM_DPKG_RULES, encoding="utf-8")


def read_ca_bundle(path: Path) -> bytes:
    """The PEM bundle at ``path``; BaseImageError if it is missing or holds no certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BaseImageError(
            f"CA bundle {path}: {exc.strerror}; give a PEM file with --ca-bundle or the "
            "base_images_ca_bundle setting"
        ) from None
    if PEM_CERTIFICATE not in data:
        raise BaseImageError(
            f"CA bundle {path} holds no PEM certificate ('{PEM_CERTIFICATE.decode()}' lines)"
        )
    return data


def add_ca_bundle(root: Path, bundle: bytes) -> None:
    """Add the CAs of ``bundle`` to the root's trust store (/etc/ssl/certs)."""
    updater = root / "usr/sbin/update-ca-certificates"
    if not updater.exists():
        raise BaseImageError(
            "a CA bundle can only be added to an image that has the ca-certificates package: "
            "add it to the image's packages, or leave the CA bundle out"
        )
    target = root / SITE_CA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bundle)
    result = subprocess.run(
        ["chroot", str(root), "/usr/sbin/update-ca-certificates"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BaseImageError(
            f"update-ca-certificates in the image failed: {result.stderr.strip() or result.stdout}"
        )


def remove_root(root: Path) -> None:
    """Delete a root folder, unmounting first anything a killed debootstrap left mounted in it."""
    if not root.exists():
        return
    for mount_point in sorted(_mounts_under(root), key=lambda p: len(p.parts), reverse=True):
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
    if _mounts_under(root):
        raise BaseImageError(f"{root} still has file systems mounted in it: unmount them first")
    shutil.rmtree(root)


def _mounts_under(root: Path) -> list[Path]:
    resolved = root.resolve()
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            # Mount points escape spaces and such as octal (\040).
            point = Path(fields[4].encode().decode("unicode_escape"))
            if point == resolved or resolved in point.parents:
                found.append(point)
    return found


def _empty(folder: Path, keep: set[str] | None = None) -> None:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if keep and entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

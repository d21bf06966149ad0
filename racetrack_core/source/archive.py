"""Unpacking an uploaded build context (base64 of a tar.gz) without trusting a byte of it.

Limits are checked while reading, never after: the compressed size before decoding, the
uncompressed stream as it is decompressed (a reader that stops at the limit, so a gzip bomb
or a huge pax header costs at most the limit), and the member count as members arrive. Each
member is checked by name and type before it is written, then by ``tarfile``'s ``data`` filter;
links are made by this module itself (tarfile's fallback for a link it cannot make reads the
rest of the archive). Everything goes to a scratch directory that is renamed into place only
when all of it is in.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

from racetrack_core.source.errors import SourceError

MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
"""Largest compressed build context accepted (after base64 decoding)."""
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
"""Largest total size of the files in a build context, and about the largest tar stream."""
MAX_MEMBERS = 20_000
"""Most files, directories and links in a build context."""

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.11.4 and later
# Before 3.11.4 (Debian 12 has 3.11.2) there is no FilterError: naming it in an except clause
# would raise AttributeError whenever a member is refused. An empty tuple catches nothing.
_FILTER_ERRORS: tuple[type[Exception], ...] = (
    (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
)
_KINDS = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
}


def unpack_build_context(
    b64: str,
    dest: Path,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_members: int = MAX_MEMBERS,
) -> Path:
    """Unpack ``b64`` (base64 of a tar.gz, as ``racetrack deploy`` sends it) into ``dest``.

    ``dest`` must not exist or be an empty directory. Regular files, directories and links that
    stay inside ``dest`` are accepted; absolute names, ``..``, links leading out, devices and
    fifos are refused with a :class:`SourceError` naming the member. On any failure ``dest`` is
    left as it was found: nothing half-written. Returns ``dest``.
    """
    data = _decode(b64, max_bytes)
    if not data.startswith(b"\x1f\x8b"):
        raise SourceError("build context is not a gzip-compressed tar archive (tar.gz)")
    if dest.is_symlink() or (dest.exists() and not (dest.is_dir() and not any(dest.iterdir()))):
        raise ValueError(f"build context destination {dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _extract(data, staging, max_unpacked_bytes, max_members)
        staging.chmod(0o755)
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def check_context_size(b64: str, max_bytes: int = MAX_ARCHIVE_BYTES) -> int:
    """The compressed size of the build context ``b64`` (base64, line breaks ignored), without
    decoding it; :class:`SourceError` naming that size when it is more than ``max_bytes``."""
    text = b64.rstrip()
    padding = len(text) - len(text.rstrip("="))
    characters = len(b64) - sum(b64.count(space) for space in " \t\r\n")
    size = max(0, characters * 3 // 4 - min(padding, 2))
    if size > max_bytes:
        raise SourceError(
            f"the build context is {_size(size, exact=True)} compressed, more than the limit of "
            f"{_size(max_bytes)}: leave build outputs, data sets and virtual environments out "
            "of the job directory (list them in .gitignore), or deploy from git"
        )
    return size


def _decode(b64: str, max_bytes: int) -> bytes:
    check_context_size(b64, max_bytes)
    text = "".join(b64.split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SourceError("build context is not valid base64") from None
    return data


def _extract(data: bytes, root: Path, max_unpacked_bytes: int, max_members: int) -> None:
    # Headers add 512 bytes a member, long names and pax records a little more.
    stream_limit = max_unpacked_bytes + 2048 * max_members + 10240
    total = 0
    members = 0
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz,
            tarfile.open(fileobj=_LimitedReader(gz, stream_limit), mode="r|") as archive,
        ):
            for member in archive:
                members += 1
                if members > max_members:
                    raise SourceError(
                        f"build context has more than {max_members} files and directories"
                    )
                if member.isfile():
                    total += member.size
                    if total > max_unpacked_bytes:
                        raise _unpacked_too_large(max_unpacked_bytes)
                if posixpath.normpath(member.name) == "." and member.isdir():
                    continue
                _check_member(member, root)
                if member.issym() or member.islnk():
                    _make_link(member, root)
                else:
                    archive.extract(member, root, **_filter_arguments())
    except _StreamTooLarge:
        raise _unpacked_too_large(max_unpacked_bytes) from None
    except (gzip.BadGzipFile, zlib.error, EOFError):
        raise SourceError("build context is not a valid gzip file (corrupt or truncated)") from None
    except _FILTER_ERRORS as error:
        raise SourceError(f"build context has an unsafe member: {error}") from None
    except tarfile.TarError as error:
        raise SourceError(f"build context is not a valid tar archive: {error}") from None
    except OSError as error:
        raise SourceError(f"build context could not be unpacked: {error.strerror}") from None


def _unpacked_too_large(max_unpacked_bytes: int) -> SourceError:
    return SourceError(f"build context unpacks to more than {_size(max_unpacked_bytes)}")


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    """Refuse a member that would write or point outside ``root``, or is not a file, dir or link."""
    name = member.name
    what = f"build context member {name!r}"
    if not name or "\0" in name:
        raise SourceError(f"build context has a member with an empty or invalid name: {name!r}")
    if name.startswith("/"):
        raise SourceError(f"{what} has an absolute path; paths must be relative")
    if ".." in name.split("/"):
        raise SourceError(f"{what} contains '..'; paths must stay inside the job directory")
    if member.type in _KINDS:
        raise SourceError(f"{what} is {_KINDS[member.type]}; only files, directories and links")
    if member.type == tarfile.GNUTYPE_SPARSE or member.sparse is not None:
        # Its stored size differs from its size: tarfile would skip gigabytes that never come.
        raise SourceError(f"{what} is a sparse file; only files, directories and links")
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        target = member.linkname
        base = posixpath.dirname(name) if member.issym() else ""
        lexical = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or lexical == ".." or lexical.startswith("../"):
            raise SourceError(f"{what} is a {kind} to {target!r}, outside the job directory")
        # Links already unpacked may bend a path that looks inside: follow them for real.
        real = os.path.realpath(root / base / target)
        if not _inside(real, root):
            raise SourceError(f"{what} is a {kind} to {target!r}, outside the job directory")
        linked = root / member.linkname
        if member.islnk() and (
            linked.is_symlink() or not linked.is_file() or os.path.lexists(root / name)
        ):
            # tarfile would read the whole rest of the archive, unchecked, to look for it.
            raise SourceError(
                f"{what} is a hard link to {target!r}, which is not an earlier file member"
            )
    elif not (member.isfile() or member.isdir()):
        raise SourceError(f"{what} is of an unsupported type; only files, directories and links")
    if not _inside(os.path.realpath(root / name), root):
        raise SourceError(f"{what} would be written outside the job directory through a link")


def _make_link(member: tarfile.TarInfo, root: Path) -> None:
    """Create a link member that ``_check_member`` accepted, without tarfile.

    When ``os.symlink`` or ``os.link`` fails, tarfile falls back to looking for the target
    among the members, which in a stream means reading (and, for huge declared sizes, skipping
    block by block) the whole rest of the archive: a hang that one small archive could cause.
    Here a link that cannot be made is a SourceError. A hard link takes the mode of the file
    it links to, which was already unpacked (and filtered) as an earlier member.
    """
    path = root / member.name
    what = f"build context member {member.name!r}"
    if os.path.isdir(path) and not os.path.islink(path):
        raise SourceError(f"{what} is a link where the context already has a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):  # a later member replaces an earlier one, as tar does
            path.unlink()
        if member.issym():
            os.symlink(member.linkname, path)
        else:
            os.link(root / member.linkname, path, follow_symlinks=False)
    except OSError as error:
        raise SourceError(f"{what} could not be made as a link: {error.strerror}") from None


def _inside(path: str, root: Path) -> bool:
    real_root = os.path.realpath(root)
    return path == real_root or path.startswith(real_root + os.sep)


def _filter_arguments() -> dict[str, Any]:
    return {"filter": _data_filter} if _HAS_DATA_FILTER else {"set_attrs": False}


def _data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter, keeping directories writable so their contents can follow."""
    member = tarfile.data_filter(member, path)
    if member.isdir() and member.mode is not None:
        member = member.replace(mode=member.mode | 0o700, deep=False)
    return member


class _StreamTooLarge(Exception):
    pass


class _LimitedReader(io.RawIOBase):
    """A readable stream that raises once more than ``limit`` bytes have been read from it."""

    def __init__(self, stream: gzip.GzipFile, limit: int) -> None:
        self._stream = stream
        self._remaining = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._stream.read(min(len(view), self._remaining + 1))
        if len(chunk) > self._remaining:
            raise _StreamTooLarge
        self._remaining -= len(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)


def _size(count: int, *, exact: bool = False) -> str:
    """``64 MiB`` for a limit; with ``exact``, one decimal (``65.0 MiB``) for a measured size."""
    if count < 1024:
        return f"{count} bytes"
    value, unit = (count / 1024, "KiB") if count < 1024 * 1024 else (count / 1024 / 1024, "MiB")
    return f"{value:.1f} {unit}" if exact else f"{value:g} {unit}"

"""Hostile build contexts stay refused with a clear error on every supported Python.

Python 3.11.2 (Debian 12's own) has no ``tarfile`` extraction filters and no
``tarfile.FilterError``; naming that class in an ``except`` clause there turned every refused
context into an ``AttributeError`` (a 500, or an "internal error" deployment). Run this module
with a virtual environment on ``/usr/bin/python3`` to check the lower end of the range.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from racetrack_core.source import SourceError, unpack_build_context
from racetrack_core.testing.server import RacetrackServer


def context(add: Callable[[tarfile.TarFile], None]) -> str:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        add(tar)
    return base64.b64encode(buffer.getvalue()).decode()


def file_member(
    name: str, content: bytes = b"x", mode: int = 0o644
) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = mode
        tar.addfile(info, io.BytesIO(content))

    return add


def link_member(name: str, target: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    return add


def device_member(name: str) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tar.addfile(info)

    return add


HOSTILE = {
    "absolute name": (file_member("/etc/racetrack-test"), "absolute path"),
    "dot-dot name": (file_member("../escape.txt"), "'..'"),
    "symbolic link out": (link_member("out", "/etc/passwd", tarfile.SYMTYPE), "outside"),
    "hard link out": (link_member("hard", "../../etc/passwd", tarfile.LNKTYPE), "outside"),
    "device": (device_member("null"), "character device"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_member_is_refused(case: str, tmp_path: Path) -> None:
    add, expected = HOSTILE[case]
    dest = tmp_path / "out" / "context"
    with pytest.raises(SourceError, match=expected):
        unpack_build_context(context(add), dest)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_set_uid_bits_are_dropped(tmp_path: Path) -> None:
    dest = unpack_build_context(context(file_member("run.sh", mode=0o4755)), tmp_path / "ctx")
    assert not (dest / "run.sh").stat().st_mode & 0o4000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_refused_context_fails_the_deployment_with_a_clear_error(
    shared_server: RacetrackServer,
) -> None:
    manifest = {
        "name": "hostile-context",
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
        "jobtype_extra": {"entrypoint_path": "entrypoint.py"},
    }
    record = shared_server.deploy(
        {"manifest": manifest, "build_context": context(file_member("../escape.txt"))},
        timeout=60,
    )
    assert record["status"] == "failed", record
    assert "contains '..'" in record["error"], record["error"]
    assert "internal error" not in record["error"]


@pytest.mark.parametrize("target", ["a", "missing", "later"])
def test_a_hard_link_to_no_earlier_member_is_refused(target: str, tmp_path: Path) -> None:
    """Found by fuzzing: tarfile's KeyError escaped, after reading the rest of the archive
    unchecked (a later member's huge declared size then kept it busy for minutes)."""
    hostile = context(link_member("a", target, tarfile.LNKTYPE))
    with pytest.raises(SourceError, match="hard link"):
        unpack_build_context(hostile, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_sparse_member_with_a_huge_stored_size_is_refused_at_once(tmp_path: Path) -> None:
    """Found by fuzzing: tarfile skipped its 8 GiB stored size in 10 KiB reads of nothing."""
    header = tarfile.TarInfo("a")
    header.type = tarfile.GNUTYPE_SPARSE
    header.size = 2**33 - 1
    raw = header.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024
    started = time.monotonic()
    with pytest.raises(SourceError, match="sparse"):
        unpack_build_context(base64.b64encode(gzip.compress(raw)).decode(), tmp_path / "dest")
    assert time.monotonic() - started < 1


def huge_member(name: str) -> bytes:
    """A file header that declares 8 GiB and carries nothing: skipping it reads block by block."""
    header = tarfile.TarInfo(name)
    header.size = 2**33 - 1
    return header.tobuf(tarfile.GNU_FORMAT)


@pytest.mark.parametrize(
    "members",
    [
        [("d", tarfile.DIRTYPE, ""), ("d", tarfile.SYMTYPE, "x")],  # a link over a directory
        [("f", tarfile.REGTYPE, ""), ("f/l", tarfile.SYMTYPE, "x")],  # under a file
        [("l", tarfile.SYMTYPE, "x" * 5000)],  # a target longer than the system takes
    ],
)
def test_a_link_that_cannot_be_made_never_reads_the_rest_of_the_archive(
    members: list[tuple[str, bytes, str]], tmp_path: Path
) -> None:
    """When os.symlink failed, tarfile looked for the link's target among all the members,
    reading the rest of the stream: a later header declaring 8 GiB then kept the unpacker
    skipping empty blocks for minutes (the fuzzer's hang past 60 examples)."""
    raw = b""
    for name, kind, target in members:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        raw += info.tobuf(tarfile.GNU_FORMAT)
    raw += huge_member("big") + b"\0" * 1024
    started = time.monotonic()
    with pytest.raises(
        SourceError, match=r"^build context member '.*' (is a link|could not be made)"
    ):
        unpack_build_context(base64.b64encode(gzip.compress(raw)).decode(), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert time.monotonic() - started < 2


def test_links_are_made_inside_the_job_directory(tmp_path: Path) -> None:
    def add(tar: tarfile.TarFile) -> None:
        file_member("src/main.py", b"print(1)\n", 0o755)(tar)
        link_member("main-link.py", "src/main.py", tarfile.SYMTYPE)(tar)
        link_member("src/again.py", "src/main.py", tarfile.LNKTYPE)(tar)
        link_member("nested/deeper/up.py", "../../src/main.py", tarfile.SYMTYPE)(tar)

    dest = unpack_build_context(context(add), tmp_path / "dest")
    assert (dest / "main-link.py").read_text() == "print(1)\n"
    assert (dest / "main-link.py").is_symlink()
    assert (dest / "src" / "again.py").stat().st_ino == (dest / "src" / "main.py").stat().st_ino
    assert (dest / "nested" / "deeper" / "up.py").read_text() == "print(1)\n"

"""Fuzzing the build-context unpacker with hostile tar.gz archives (issue 15).

Every archive either unpacks wholly inside the destination or is refused with a SourceError,
and in both cases nothing is written anywhere else: a canary folder beside the destination,
which hostile names and links aim at, stays exactly as it was.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from racetrack_core.source.archive import unpack_build_context
from racetrack_core.source.errors import SourceError
from tests.security.memory import MIB, allocations_below

CANARY = "@CANARY@"  # replaced by the canary folder's absolute path in each example
KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
         tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE,
         b"V", b"x"]  # fmt: skip

segments = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b", "canary", "keep", "dest", CANARY, "x" * 255]),
    st.text(st.characters(blacklist_characters="\0/", codec="utf-8"), min_size=1, max_size=12),
)
names = st.one_of(
    st.lists(segments, min_size=1, max_size=5).map("/".join),
    st.sampled_from(
        [
            "../canary/keep",
            "../canary/new",
            f"{CANARY}/new",
            "/etc/passwd",
            "a/" * 60 + "deep",
            "x" * 300,
            "a/../../canary/new",
        ]
    ),
)
members = st.tuples(
    names,
    st.sampled_from(KINDS),
    names,  # the link target, for links
    st.binary(max_size=64),
    st.one_of(st.none(), st.sampled_from([0, 1, 2**33, 2**40, -1 % 2**33])),  # declared size
)


def tar_gz(entries: list[tuple[str, bytes, str, bytes, int | None]], canary: Path) -> str:
    """A tar.gz (base64) whose headers say what the entries say, sizes included."""
    stream = io.BytesIO()
    for name, kind, target, data, declared in entries:
        info = tarfile.TarInfo(name.replace(CANARY, str(canary)))
        info.type = kind
        info.linkname = target.replace(CANARY, str(canary))
        info.mode = 0o755
        info.size = len(data) if declared is None else declared
        stream.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if kind in (tarfile.REGTYPE, tarfile.CONTTYPE):
            stream.write(data + b"\0" * (-len(data) % 512))
    stream.write(b"\0" * 1024)
    return base64.b64encode(gzip.compress(stream.getvalue())).decode()


def snapshot(root: Path) -> dict[str, bytes | str | None]:
    """Every path under ``root`` (links not followed): file contents, link targets, dirs."""
    found: dict[str, bytes | str | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = os.readlink(path)
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = None
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-contexts")


@settings(deadline=5000)
@given(st.lists(members, min_size=1, max_size=8), st.booleans())
def test_an_archive_unpacks_inside_or_is_refused_and_writes_nothing_outside(
    workspace: Path, entries: list[tuple[str, bytes, str, bytes, int | None]], tiny: bool
) -> None:
    example = Path(tempfile.mkdtemp(dir=workspace))
    canary = example / "canary"
    canary.mkdir()
    (canary / "keep").write_bytes(b"canary")
    before = snapshot(example)
    dest = example / "dest"
    limits = {"max_unpacked_bytes": 100, "max_members": 4} if tiny else {}

    archive = tar_gz(entries, canary)
    try:
        # Streamed member by member: memory stays small, whatever the archive holds.
        with allocations_below(32 * MIB, "unpacking one build context"):
            unpack_build_context(archive, dest, **limits)
        refused = None
    except SourceError as error:
        refused = error

    after = snapshot(example)
    outside = {k: v for k, v in after.items() if k != "dest" and not k.startswith("dest/")}
    assert outside == before, "written outside the destination"
    event("refused" if refused is not None else "unpacked")
    if refused is not None:
        assert str(refused).startswith("build context"), refused
        assert not dest.exists(), "a refused context left files behind"
        return
    real_dest = os.path.realpath(dest)
    for key in after:
        real = os.path.realpath(example / key)
        if key.startswith("dest/"):
            assert real == real_dest or real.startswith(real_dest + os.sep), key

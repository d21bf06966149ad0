"""Which Debian mirror debootstrap fetches from: the one this host's apt already uses.

apt keeps its sources in ``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/``, in two
formats: one line per source (``deb [options] URI SUITE COMPONENT...``, files ending in
``.list``) and deb822 stanzas (``Types:``, ``URIs:``, ``Suites:`` fields, files ending in
``.sources``). The first enabled ``deb`` source that carries the wanted suite wins, in apt's
own order: ``sources.list`` first, then the folder's files by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from racetrack_core.baseimages import BaseImageError

APT_DIR = Path("/etc/apt")
#: URI schemes that debootstrap can fetch from (apt's mirror+, cdrom: and tor+ cannot be used).
FETCHABLE = ("http://", "https://", "file:/")


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: its URI, the suites it serves, and the file that declares it."""

    uri: str
    suites: tuple[str, ...]
    origin: Path


def find_mirror(suite: str, apt_dir: Path = APT_DIR) -> AptSource:
    """The first source in ``apt_dir`` that serves ``suite``; BaseImageError if there is none."""
    sources = read_sources(apt_dir)
    for source in sources:
        if suite in source.suites and source.uri.startswith(FETCHABLE):
            return source
    seen = ", ".join(sorted({s for source in sources for s in source.suites})) or "none"
    raise BaseImageError(
        f"no apt source in {apt_dir}/sources.list or {apt_dir}/sources.list.d/ serves Debian "
        f"'{suite}' over http, https or file (suites found: {seen}); give the mirror with "
        "--mirror URL or the base_images_mirror setting (RACETRACK_BASE_IMAGES_MIRROR)"
    )


def read_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every enabled ``deb`` source in ``apt_dir``, in apt's order."""
    files = [apt_dir / "sources.list"]
    folder = apt_dir / "sources.list.d"
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in {".list", ".sources"})
    sources: list[AptSource] = []
    for path in files:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise BaseImageError(f"cannot read apt sources file {path}: {exc.strerror}") from None
        parse = parse_deb822 if path.suffix == ".sources" else parse_one_line
        sources += parse(text, path)
    return sources


def parse_one_line(text: str, origin: Path) -> list[AptSource]:
    """Sources of the one-line format: ``deb [key=value ...] URI SUITE [COMPONENT ...]``."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        words = line[3:].strip()
        if words.startswith("["):
            closing = words.find("]")
            if closing < 0:
                continue
            options = words[1:closing].split()
            if "enabled=no" in options:
                continue
            words = words[closing + 1 :]
        fields = words.split()
        if len(fields) >= 2:
            sources.append(AptSource(fields[0].rstrip("/"), (fields[1],), origin))
    return sources


def parse_deb822(text: str, origin: Path) -> list[AptSource]:
    """Sources of the deb822 format: stanzas of ``Field: value`` lines, blank-line separated."""
    sources = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(stanza.get("suites", "").split())
        for uri in stanza.get("uris", "").split():
            sources.append(AptSource(uri.rstrip("/"), suites, origin))
    return sources


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, ""
            continue
        if line[0] in " \t":
            if field:  # a continuation line adds to the field above it
                current[field] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if colon:
            field = name.strip().lower()
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas

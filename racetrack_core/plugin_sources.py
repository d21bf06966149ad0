"""Where a server installs a plugin from: a requirement on its package index, or a git URL.

:func:`parse` tells the two apart (and refuses anything else: a path on the server, an option
for uv, a URL of another kind); :func:`check_hosts` refuses a loopback or private package index
or git host the settings do not allow; :func:`racetrack_pins` are the versions of Racetrack's
own dependencies, which an install may not change (they are handed to uv as constraints);
:func:`explain_conflict` turns uv's account of a resolution that failed on one of them into a
sentence. Every message masks a URL's ``user:password@``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from racetrack_core.errors import RacetrackError
from racetrack_core.plugins import OWN_DISTRIBUTION
from racetrack_core.source.git import scrub
from racetrack_core.source_hosts import SourceHostError, allowed_hosts, check_url

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_CLAUSE = r"(?:===|==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9.*+!_-]+"
REQUIREMENT = re.compile(
    rf"^(?P<name>{_NAME})\s*(?:\[[A-Za-z0-9_., -]*\])?\s*"
    rf"(?P<spec>{_CLAUSE}(?:\s*,\s*{_CLAUSE})*)?\s*$"
)
GIT_URL = re.compile(r"^(?:(?P<name>" + _NAME + r")\s*@\s*)?(?P<url>git\+https?://\S+)$")


class SourceError(RacetrackError):
    """A plugin source the server will not install from; the message says why."""


@dataclass(frozen=True)
class PluginSource:
    """A requirement (``kind == "index"``) or a git URL (``kind == "git"``) to install.

    ``spec`` is what uv gets; ``shown`` is the same with credentials masked; ``name`` is the
    distribution's name when the spec gives one.
    """

    kind: str
    spec: str
    shown: str
    name: str | None


def parse(spec: str) -> PluginSource:
    """A plugin source from the text a user gave; raise SourceError naming the forms taken."""
    text = spec.strip()
    shown = scrub(text, ())
    git = GIT_URL.fullmatch(text)
    if git:
        return PluginSource("git", text, shown, git.group("name"))
    requirement = REQUIREMENT.fullmatch(text)
    if requirement:
        return PluginSource("index", text, shown, requirement.group("name"))
    raise SourceError(
        f"'{shown}' is not a plugin source a server installs from: give a requirement from "
        "its package index (racetrack-hello-jobtype or racetrack-hello-jobtype==0.1.0), a git "
        "URL (git+https://host/repo.git, optionally @ a tag or commit), or a wheel file"
    )


def check_hosts(source: PluginSource, index_url: str, allowed_setting: str) -> None:
    """Refuse a source whose git host, or the package index it comes from, is loopback or
    private and not allowed by ``source_allowed_hosts``."""
    allowed = allowed_hosts(allowed_setting)
    try:
        if source.kind == "git":
            url = GIT_URL.fullmatch(source.spec)
            assert url is not None  # parse() matched it
            check_url(url.group("url").removeprefix("git+"), allowed, "the git URL")
        if index_url:
            check_url(index_url, allowed, "the package index")
    except SourceHostError as exc:
        raise SourceError(str(exc)) from None


def racetrack_pins() -> dict[str, str]:
    """Racetrack's distribution and everything it requires, directly or not, as installed:
    normalized name to version."""
    pins: dict[str, str] = {}
    pending = [OWN_DISTRIBUTION]
    while pending:
        name = pending.pop()
        key = normalize(name)
        if key in pins:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific requirement that is not installed
        pins[key] = dist.version
        for requirement in dist.requires or []:
            if "extra ==" in requirement.replace('"', "").replace("'", ""):
                continue
            found = re.match(_NAME, requirement.strip())
            if found:
                pending.append(found.group(0))
    return pins


def write_constraints(pins: Mapping[str, str], folder: Path) -> Path:
    """A constraints file holding ``pins``, for uv's ``-c``."""
    path = folder / "racetrack-constraints.txt"
    path.write_text("".join(f"{name}=={pins[name]}\n" for name in sorted(pins)), encoding="utf-8")
    return path


def explain_conflict(output: str, pins: Mapping[str, str], plugin: str) -> str | None:
    """One sentence naming the pinned package a failed resolution wanted to change, or None
    when uv's output names none of Racetrack's pins."""
    text = " ".join(output.split())
    for wanted, needed in re.findall(rf"({_NAME})\S* depends? on ({_NAME}[^\s,]*)", text):
        dependency = re.match(_NAME, needed)
        assert dependency is not None
        key = normalize(dependency.group(0))
        if key in pins and normalize(wanted) not in pins:
            return (
                f"plugin {scrub(plugin, ())} needs {needed} but Racetrack pins "
                f"{key}=={pins[key]}, and a plugin may not change Racetrack's own packages: "
                "use a release of the plugin that accepts that version"
            )
    return None


def normalize(name: str) -> str:
    """A distribution name as packaging compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()

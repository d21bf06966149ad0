"""Reading a job's ``go.mod`` and fitting it to the Go installed on the server.

Go 1.21 and newer write ``go 1.22.0`` (three numbers) and a ``toolchain`` line; Go 1.19, the
version Debian 12 ships, rejects both ("invalid go version", "unknown directive"). ``fit_gomod``
rewrites the ``go`` line to a version the installed Go accepts, drops the directives it does not
know (``toolchain``, ``godebug``, ``tool``), and records what it changed and what the job asked
for, so that a later build failure can name the Go version needed. These functions depend on
nothing but the text; they know nothing of recipes or targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Directives of newer Go that an older Go refuses and that do not change what is compiled
#: (``godebug`` changes run-time defaults: dropping it keeps the older Go's defaults).
DROPPED_DIRECTIVES = ("toolchain", "godebug", "tool")
_VERSION = re.compile(r"^1\.(\d+)(?:\.(\d+))?(?:(?:rc|beta)\d+)?$")
_MODULE = re.compile(r'^module\s+"?([^\s"/][^\s"]*)"?\s*(?://.*)?$')
_GO = re.compile(r"^go\s+(\S+)\s*(?://.*)?$")


class GoModError(ValueError):
    """``go.mod`` cannot be used; the message names the line and how to fix it."""


GoVersion = tuple[int, int, int]


def parse_go_version(text: str) -> GoVersion | None:
    """``1.22.0`` -> (1, 22, 0); ``go1.19.8`` and ``1.21rc2`` too; None for anything else."""
    found = _VERSION.match(text.strip().removeprefix("go"))
    if found is None:
        return None
    return 1, int(found.group(1)), int(found.group(2) or 0)


def format_go_version(version: GoVersion) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class FittedGoMod:
    """``go.mod`` as the installed Go can read it, and what fitting it changed."""

    text: str
    module: str
    requested: GoVersion | None
    notes: list[str] = field(default_factory=list)

    def asks_newer_than(self, installed: GoVersion) -> bool:
        """Whether the job asked for a newer language version than ``installed`` (major.minor)."""
        return self.requested is not None and self.requested[:2] > installed[:2]


def fit_gomod(text: str, installed: GoVersion) -> FittedGoMod:
    """Rewrite ``go.mod`` for the installed Go; GoModError when it cannot be read at all."""
    lines = text.splitlines()
    kept: list[str] = []
    notes: list[str] = []
    module = ""
    requested: GoVersion | None = None
    dropping: str | None = None  # the directive whose ( ... ) block is being dropped
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if dropping is not None:
            if stripped.startswith(")"):
                dropping = None
            continue
        directive = stripped.split(None, 1)[0] if stripped else ""
        if directive in DROPPED_DIRECTIVES:
            notes.append(
                f"go.mod line {number}: dropped '{stripped}' (Go {_short(installed)} "
                "does not know this directive)"
            )
            if stripped.rstrip().endswith("("):
                dropping = directive
            continue
        found_module = _MODULE.match(stripped)
        if found_module:
            module = found_module.group(1)
        found_go = _GO.match(stripped)
        if found_go:
            requested = parse_go_version(found_go.group(1))
            if requested is None:
                raise GoModError(
                    f"go.mod line {number}: 'go {found_go.group(1)}' is not a Go 1.x version; "
                    f"write a version like 'go {_short(installed)}'"
                )
            fitted = f"go 1.{min(requested[1], installed[1])}"
            if fitted != stripped:
                notes.append(
                    f"go.mod line {number}: '{stripped}' read as '{fitted}' for Go "
                    f"{format_go_version(installed)}"
                )
            kept.append(fitted)
            continue
        kept.append(line)
    if not module:
        raise GoModError("go.mod has no 'module' line; start it with 'module example.com/job'")
    return FittedGoMod("\n".join(kept) + "\n", module, requested, notes)


def _short(version: GoVersion) -> str:
    return f"{version[0]}.{version[1]}"

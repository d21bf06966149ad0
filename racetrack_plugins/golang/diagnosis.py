"""Sentences for a failed Go build: what the compiler's output most likely means for the author."""

from __future__ import annotations

import re

from racetrack_plugins.golang.build import WRAPPER_PACKAGE
from racetrack_plugins.golang.gomod import FittedGoMod, GoVersion, format_go_version

#: What the compiler of an older Go says about code that uses the features of a newer one.
_NEWER_GO = re.compile(
    r"requires go1\.\d+|undefined: (min|max|clear)\b|cannot range over \S+ \(untyped int"
)


def build_failure(tail: list[str], gomod: FittedGoMod, installed: GoVersion) -> str:
    """One sentence for a failed ``go build``, naming the likely cause when it is known."""
    text = "\n".join(tail)
    if "module lookup disabled by GOPROXY=off" in text or "missing go.sum entry" in text:
        return (
            "go build failed: go.mod requires modules that are not in vendor/; run "
            "'go mod vendor' in the job, or ask the admin to set GOPROXY on the server"
        )
    if f"{WRAPPER_PACKAGE}/job.go" in text:
        return (
            "go build failed: Perform must be func Perform(input map[string]interface{}) "
            "(interface{}, error)"
        )
    newer = gomod.asks_newer_than(installed)
    if newer and _NEWER_GO.search(text):
        return version_sentence(gomod, installed, "cannot build this code")
    message = "go build failed: the compiler's errors are in the build log"
    if newer and gomod.requested is not None:
        message += (
            f" (go.mod asks for Go {format_go_version(gomod.requested)}; this server "
            f"builds with Go {format_go_version(installed)})"
        )
    return message


def version_sentence(gomod: FittedGoMod, installed: GoVersion, problem: str) -> str:
    """``go.mod asks for Go X and this server has Go Y, which <problem>: <what to do>``."""
    assert gomod.requested is not None
    needed = format_go_version(gomod.requested)
    return (
        f"go.mod asks for Go {needed} and this server has Go {format_go_version(installed)}, "
        f"which {problem}: write the job for Go {installed[0]}.{installed[1]} (see the build "
        f"log), or deploy it to a target with Go {needed} or newer"
    )

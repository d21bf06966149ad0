"""The one error of the source phase, kept apart so every module of the package can raise it."""

from __future__ import annotations

from racetrack_core.errors import RacetrackError


class SourceError(RacetrackError):
    """A job's source could not be fetched or unpacked.

    The message says what went wrong (repository not found, credentials refused, unknown branch,
    ``git.directory`` missing, a timeout, an unsafe build context) and how to fix it. It never
    contains a credential: git's own output is scrubbed before it is quoted.
    """

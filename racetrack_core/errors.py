"""Every error that Racetrack raises on purpose.

    RacetrackError                 base of everything below; its message is meant for a person
    ├── PluginError                a plugin could not be loaded, or one of its hooks failed
    │   └── RegistrationError      a plugin registered a malformed or duplicate job type or target
    ├── AuthenticationError        a request's credentials are refused (never echoes them)
    ├── ManifestError              a manifest cannot be read or does not validate (has .problems)
    └── NotFoundError              a job type or infrastructure target that is not installed

Modules that own a failure define its error next to the code that raises it, under the same
base: ``settings.SettingsError``, ``storage.database.DatabaseError``,
``security.SecretsError``, ``source.SourceError``, ``infrastructure.DeployError`` (with the
job's last output), ``server.ServerError``, and ``lifecycle.responses.ApiError`` with one
subclass per HTTP status the API answers (BadRequest, Unauthenticated, Forbidden, NotFound,
Conflict, PayloadTooLarge, Unavailable).

Messages say what happened, with the offending value, and how to fix it when there is a fix.
"""

from __future__ import annotations

from collections.abc import Sequence


class RacetrackError(Exception):
    """Base class of the errors that Racetrack raises on purpose."""


class PluginError(RacetrackError):
    """A plugin could not be loaded, or one of its hooks raised."""


class RegistrationError(PluginError):
    """A plugin registered a malformed or duplicate job type or infrastructure target."""


class AuthenticationError(RacetrackError):
    """The request's credentials are refused; the message says why, without echoing them.

    A plugin's ``authenticate_request`` may raise it to refuse a request outright; it passes
    through the plugin manager unwrapped.
    """


class NotFoundError(RacetrackError):
    """A job type or infrastructure target was asked for, and none is installed under that name."""


class ManifestError(RacetrackError):
    """A manifest could not be loaded or is not valid.

    ``problems`` holds one sentence per problem, each naming the field, its line and the
    offending value; ``str(error)`` joins them under a heading naming the file.
    """

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source} " if source else "manifest "
        if len(self.problems) == 1:
            message = f"{where}is not valid: {self.problems[0]}"
        else:
            lines = "".join(f"\n  - {problem}" for problem in self.problems)
            message = f"{where}is not valid ({len(self.problems)} problems):{lines}"
        super().__init__(message)

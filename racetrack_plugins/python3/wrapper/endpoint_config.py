"""``EndpointConfig``: one endpoint of ``auxiliary_endpoints_v2``, as in the original wrapper.

``from racetrack_job_wrapper.endpoint_config import EndpointConfig`` works in job code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):  # noqa: UP036 - a job may run an older Python
    from http import HTTPMethod
else:  # a job's own Python may be older than the server's: the method is then a str
    HTTPMethod = str


@dataclass
class EndpointConfig:
    """An endpoint served at ``/api/v1{path}``.

    ``path`` may hold ``{name}`` placeholders (path parameters); ``method`` is ``GET`` or
    ``POST``; ``handler`` is called with the parameters; ``other_options`` were FastAPI's route
    options in the original (``tags``, ``summary``, ``description`` are used in the docs here,
    the others are ignored).
    """

    path: str
    method: HTTPMethod | str
    handler: Callable[..., Any]
    other_options: dict[str, Any] = field(default_factory=dict)

"""``EndpointConfig``: one endpoint of ``auxiliary_endpoints_v2``, as in the original wrapper.

``from racetrack_job_wrapper.endpoint_config import EndpointConfig`` works in job code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPMethod
from typing import Any


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

"""A planet catalogue: every feature of the python3 job type in one class.

``perform`` with typed arguments and defaults, examples for the docs, an auxiliary endpoint
(one of them async), static files (a page and a folder of images), a requirement (humanize),
an ``__init__`` that takes its time, and settings read from the manifest's ``runtime_env``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import humanize

KM_PER_MILE = 1.609344
Unit = Literal["km", "mi"]


class PlanetCatalogue:
    """Facts about the planets of the solar system, read from a JSON file at start-up."""

    def __init__(self) -> None:
        # The wrapper calls __init__ in the background: /live answers at once, /ready and the
        # calls answer 503 until it returns. Paths are relative to the job directory.
        time.sleep(float(os.environ.get("PLANETS_WARMUP_SECONDS", "0")))
        catalogue = Path(os.environ.get("PLANETS_CATALOGUE", "data/planets.json"))
        planets = json.loads(catalogue.read_text(encoding="utf-8"))
        self.planets: dict[str, dict[str, Any]] = {p["name"].lower(): p for p in planets}

    def perform(self, planet: str, unit: Unit = "km", precision: int = 0) -> dict[str, Any]:
        """Describe a planet: its radius and its mean distance from the Sun, in km or miles."""
        facts = self._find(planet)
        scale = 1.0 if unit == "km" else 1 / KM_PER_MILE
        distance = facts["distance_km"] * scale
        return {
            "planet": facts["name"],
            "unit": unit,
            "radius": round(facts["radius_km"] * scale, precision),
            "distance_from_sun": round(distance, precision),
            "moons": facts["moons"],
            "summary": f"{facts['name']} is {humanize.intword(distance)} {unit} from the Sun",
        }

    async def compare(self, first: str, second: str) -> dict[str, Any]:
        """Which of two planets is larger, and how many times over (by radius)."""
        one, other = self._find(first), self._find(second)
        larger, smaller = sorted((one, other), key=lambda p: p["radius_km"], reverse=True)
        return {
            "larger": larger["name"],
            "smaller": smaller["name"],
            "ratio": round(larger["radius_km"] / smaller["radius_km"], 2),
        }

    def list_planets(self, sort_by: Literal["name", "distance"] = "distance") -> list[str]:
        """Every planet in the catalogue, by name or by distance from the Sun."""
        key = "name" if sort_by == "name" else "distance_km"
        return [p["name"] for p in sorted(self.planets.values(), key=lambda p: p[key])]

    def docs_input_example(self) -> dict[str, Any]:
        """The example body of /perform shown in the docs."""
        return {"planet": "Mars", "unit": "km", "precision": 0}

    def docs_input_examples(self) -> dict[str, dict[str, Any]]:
        """Example bodies of the other endpoints."""
        return {
            "/compare": {"first": "Earth", "second": "Jupiter"},
            "/planets": {"sort_by": "name"},
        }

    def auxiliary_endpoints(self) -> dict[str, Any]:
        """More calls, each served as POST /api/v1/<path>."""
        return {"/compare": self.compare, "/planets": self.list_planets}

    def static_endpoints(self) -> dict[str, Any]:
        """Files served as GET /api/v1/<path>: one page (with its type) and a folder."""
        return {"/guide": ("static/guide.html", "text/html"), "/images": "static/images"}

    def _find(self, name: str) -> dict[str, Any]:
        try:
            return self.planets[name.strip().lower()]
        except KeyError:
            known = ", ".join(p["name"] for p in self.planets.values())
            raise ValueError(f"unknown planet '{name}'; known planets: {known}") from None

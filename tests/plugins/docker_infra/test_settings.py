"""The Docker target's settings: limits from a manifest's resources, defaults, caps, errors."""

from __future__ import annotations

import pytest

from racetrack_core.errors import RacetrackError
from racetrack_plugins.docker_infra.settings import DockerSettings


def test_resources_become_limits_within_the_caps() -> None:
    settings = DockerSettings.from_mapping(
        {"memory_default": "256Mi", "memory_cap": "1Gi", "cpu_default": 0.5, "cpu_cap": 2}
    )
    assert settings.limits(None) == (256 * 1024**2, 0.5)
    assert settings.limits({"memory_max": "512Mi", "cpu_max": "1500m"}) == (512 * 1024**2, 1.5)
    assert settings.limits({"memory_min": "100M", "cpu_min": 1}) == (100 * 1000**2, 1.0)
    assert settings.limits({"memory_max": "8Gi", "cpu_max": 16}) == (1024**3, 2.0)


def test_a_wrong_setting_is_named() -> None:
    with pytest.raises(RacetrackError, match=r"targets\.docker: unknown setting 'restart'"):
        DockerSettings.from_mapping({"restart": "always"})
    with pytest.raises(RacetrackError, match=r"targets.docker.crash_limit: 'three'"):
        DockerSettings.from_mapping({"crash_limit": "three"})
    with pytest.raises(RacetrackError, match=r"targets.docker.build: unknown setting 'cli'"):
        DockerSettings.from_mapping({"build": {"cli": "/usr/bin/docker"}})
    assert DockerSettings.from_mapping({}).build.docker_cli.name == "docker"

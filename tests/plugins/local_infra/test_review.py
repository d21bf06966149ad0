"""The local target's warnings for what it will not honour: replicas, resources, packages."""

from __future__ import annotations

import shutil

import pytest

from racetrack_core import PluginManager
from racetrack_core.manifest import parse_manifest
from racetrack_core.schema import validate_manifest

BASE = (
    "name: p\nowner_email: a@b.c\njobtype: python3\ngit: {remote: https://x.invalid/r}\n"
    "jobtype_extra: {entrypoint_path: entrypoint.py}\n"
)


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    return PluginManager().load()


def test_a_plain_manifest_gets_no_warning(plugins: PluginManager) -> None:
    assert validate_manifest(parse_manifest(BASE), plugins, default_target="local").warnings == []


def test_replicas_resources_and_missing_packages_are_warned_about(plugins: PluginManager) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("no dpkg-query: this test needs a Debian-like system")
    text = BASE + (
        "replicas: 3\nresources: {memory_max: 1Gi}\n"
        "system_dependencies: [bash, racetrack-no-such-package]\n"
    )
    warnings = validate_manifest(parse_manifest(text), plugins, default_target="local").warnings
    assert warnings == [
        "replicas: 3 is not honoured on the local target, which runs one process per job "
        "version; deploy to docker for several",
        "resources are not enforced on the local target (no memory or CPU limits); deploy to "
        "docker for limits",
        "system_dependencies not installed on this server: racetrack-no-such-package; the "
        "local target installs no packages (ask an admin to install them, or deploy to docker, "
        "which installs them into the image)",
    ]
    # The same manifest aimed at docker gets none of the local target's warnings.
    docker = validate_manifest(parse_manifest(text + "infrastructure_target: docker\n"), plugins)
    assert not [w for w in docker.warnings if "local target" in w]

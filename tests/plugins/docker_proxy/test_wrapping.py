"""The Docker target's side of docker-proxy: which images are wrapped, and the seccomp profile
their containers run under (the e2e test shows the proxy making its namespaces under it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from racetrack_plugins.docker_infra.wrapping import SECCOMP_PROFILE, run_options
from tests.plugins.docker_infra.conftest import base_image, docker_client

__all__ = ["base_image", "docker_client"]

pytestmark = pytest.mark.slow


def test_an_image_without_the_label_runs_as_it_is(docker_client: Any, base_image: str) -> None:
    assert run_options(docker_client.images.get(base_image)) == {}


SCRIPT = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, flags in (("user+mount", 0x10020000), ("user+pid", 0x30000000), ("user+net", 0x50000000)):
    print(name, libc.unshare(flags), ctypes.get_errno())
"""


def unshare_in_a_container(client: Any, image: str, profile: str) -> list[str]:
    """What ``unshare(2)`` answers in a container under a seccomp ``profile``, one line a try
    (after a call that succeeds, the next ones run in the namespaces it made)."""
    output = client.containers.run(
        image, ["python3", "-c", SCRIPT], remove=True, network_mode="none",
        security_opt=[f"seccomp={profile}"], labels={"racetrack-test": "wrapping"},
    )  # fmt: skip
    return bytes(output).decode().splitlines()


def test_the_profile_lets_no_process_unshare_namespaces(
    docker_client: Any, base_image: str
) -> None:
    assert json.loads(SECCOMP_PROFILE)["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = unshare_in_a_container(docker_client, base_image, SECCOMP_PROFILE)
    assert denied == ["user+mount -1 1", "user+pid -1 1", "user+net -1 1"]
    # Without any profile the same calls succeed: the denial is the profile's doing.
    allowed = unshare_in_a_container(docker_client, base_image, "unconfined")
    assert allowed[0] == "user+mount 0 0"

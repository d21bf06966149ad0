"""``go vet`` and ``go test`` over the proxy's own sources, as the image build lays them out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from racetrack_plugins.docker_proxy.image import copy_proxy
from tests.plugins.golang.conftest import go, go_build_cache

__all__ = ["go", "go_build_cache"]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", [["vet", "./..."], ["test", "-count=1", "./..."]])
def test_the_proxys_go_checks_pass(go: str, tmp_path: Path, command: list[str]) -> None:
    source = tmp_path / "proxy"
    copy_proxy(source)
    for test in (Path(__file__).parents[3] / "racetrack_plugins/docker_proxy/proxy").glob(
        "*_test.go"
    ):
        (source / test.name).write_text(test.read_text())
    done = subprocess.run(
        [go, *command], cwd=source, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0",
             "GOTOOLCHAIN": "local"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

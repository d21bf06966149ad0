"""The author's Dockerfile, fitted: images rewritten in place, the proxy stages added."""

from __future__ import annotations

import pytest

from racetrack_core.images import LABEL_NETWORK_WRAPPER as WRAPPER_LABEL
from racetrack_core.images import LABEL_POD_PROXY
from racetrack_core.infrastructure import DeployError
from racetrack_plugins.docker_proxy.dockerfile import JOB_STAGE, fit

REWRITE = {"python:3.11-slim": "mirror.example/python:3.11-slim", "golang:1.19-bookworm": "go"}


def test_from_lines_go_through_the_sites_map_and_keep_their_numbers() -> None:
    original = '# syntax comment\nFROM python:3.11-slim\nRUN false\nCMD ["x"]\n'
    fitted = fit(original, REWRITE, "go", 7004).splitlines()
    assert fitted[1] == f"FROM mirror.example/python:3.11-slim AS {JOB_STAGE}"
    assert fitted[2] == "RUN false"  # a failing step keeps the author's line number
    assert "FROM go AS racetrack-proxy-build" in fitted
    assert fitted[-4] == f"FROM {JOB_STAGE}"
    assert "ENV JOB_USER_MODULE_PORT=7004" in fitted
    assert f'{WRAPPER_LABEL}="/racetrack/proxy"' in fitted[-1]
    assert f'{LABEL_POD_PROXY}="/racetrack/proxy -racetrack-pod"' in fitted[-1]


def test_stages_keep_their_names_and_stage_references_are_not_rewritten() -> None:
    original = (
        "FROM --platform=linux/amd64 python:3.11-slim AS python:3.11-slim\n"
        "FROM python:3.11-slim as final\n"
        "FROM unknown:1 AS other\n"
    )
    fitted = fit(original, REWRITE, "go", 8080).splitlines()
    assert fitted[0] == (
        "FROM --platform=linux/amd64 mirror.example/python:3.11-slim AS python:3.11-slim"
    )
    assert fitted[1] == "FROM python:3.11-slim as final"  # an earlier stage, not an image
    assert fitted[2] == "FROM unknown:1 AS other"
    assert "FROM other" in fitted
    assert "ENV JOB_USER_MODULE_PORT=8080" in fitted


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("RUN echo\n", "has no FROM line"),
        ("FROM python:3.11-slim \\\n  AS x\n", "Dockerfile line 1: Racetrack reads 'FROM image"),
    ],
)
def test_unreadable_dockerfiles_are_refused_with_the_line(text: str, words: str) -> None:
    with pytest.raises(DeployError, match=words):
        fit(text, REWRITE, "go", 7004)

"""Lifecycle's plugin routes: a failed install or uninstall answers 400 saying why."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def test_a_wheel_that_uv_cannot_install_answers_with_uv_output(
    client: TestClient, token: str
) -> None:
    answer = client.post(
        "/api/v1/plugin/upload/broken-1.0.0-py3-none-any.whl",
        content=b"PK\x03\x04 not a zip archive",
        headers={"X-Racetrack-Auth": token},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith("could not install '")
    assert "broken-1.0.0-py3-none-any.whl': uv exited with code 1; uv said:\n" in error
    assert "Failed to read from zip file" in error
    assert "see above" not in error
    assert "environment at" not in error
    installed = client.get("/api/v1/plugin", headers={"X-Racetrack-Auth": token}).json()
    assert "broken" not in [plugin["name"] for plugin in installed]


def test_uninstalling_a_built_in_is_refused(client: TestClient, token: str) -> None:
    answer = client.delete("/api/v1/plugin/golang", headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "'golang' is a built-in plugin, part of the racetrack-platform distribution, and cannot be "
        "uninstalled; to turn it off, set RACETRACK_DISABLE_PLUGINS=golang"
    )


def test_uninstalling_an_unknown_plugin_names_the_installed_ones(
    client: TestClient, token: str
) -> None:
    answer = client.delete("/api/v1/plugin/helo", headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 404  # 400 before schemathesis found it: the path names it
    assert answer.json()["error"].startswith("no plugin or distribution named 'helo'")

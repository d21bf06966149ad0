"""Tests of the hello job type, on the pytest fixtures that Racetrack ships
(``racetrack_core.testing``). Install the plugin first (``pip install -e .``): the fixtures load
it through its entry point, as a server does."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core.errors import ManifestError
from racetrack_core.manifest import load_manifest, parse_manifest
from racetrack_core.plugins import PluginManager
from racetrack_core.recipes import ArtifactKind
from racetrack_core.schema import validate_manifest
from racetrack_core.testing.server import RacetrackServer

EXAMPLE = Path(__file__).resolve().parents[1] / "example"


def test_the_job_type_is_registered_with_both_recipes(
    racetrack_plugin_manager: PluginManager,
) -> None:
    job_type = racetrack_plugin_manager.job_types.resolve("hello:1.x")
    assert (job_type.name, job_type.plugin) == ("hello", "hello")
    assert job_type.recipes.kinds() == {ArtifactKind.PROCESS, ArtifactKind.IMAGE}


def test_the_example_job_is_valid(racetrack_plugin_manager: PluginManager) -> None:
    validated = validate_manifest(load_manifest(EXAMPLE / "job.yaml"), racetrack_plugin_manager)
    assert validated.job_type.ref == "hello:1.0.0"
    assert validated.data["jobtype_extra"] == {"greeting": "Hello, world"}


def test_a_blank_greeting_is_refused(racetrack_plugin_manager: PluginManager) -> None:
    manifest = parse_manifest(
        "name: greeter\nowner_email: me@example.com\njobtype: hello:1.0.0\n"
        "jobtype_extra:\n  greeting: ' '\n"
    )
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest, racetrack_plugin_manager)
    assert caught.value.problems == [
        "field 'jobtype_extra.greeting' (line 5): is blank; write a greeting, like 'Hello'"
    ]


def test_the_example_job_deploys_and_answers_through_pub(
    racetrack_server: RacetrackServer,
) -> None:
    racetrack_server.login()
    record = racetrack_server.deploy_folder(EXAMPLE)
    assert record["status"] == "done", f"{record.get('error')}\n{racetrack_server.log()}"
    answer = racetrack_server.call("hello-world", "1.0.0", {})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"greeting": "Hello, world", "job_type": "hello:1.0.0"}
    assert racetrack_server.call("hello-world", "1.0.0", {}, token=None).status_code == 401

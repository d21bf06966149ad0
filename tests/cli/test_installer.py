"""The installer's parts that need no network: specs, names, undo, and uv's listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_cli import installer


def test_a_directory_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plugin").mkdir()
    monkeypatch.chdir(tmp_path)
    assert installer.resolve_spec("plugin") == str(tmp_path / "plugin")
    assert installer.resolve_spec("./plugin") == str(tmp_path / "plugin")


@pytest.mark.parametrize(
    "spec",
    [
        "racetrack-hello-jobtype",
        "racetrack-hello-jobtype>=0.1",
        "hello @ https://example.com/hello-0.1.0-py3-none-any.whl",
        "git+https://example.com/hello.git",
    ],
)
def test_a_requirement_is_passed_on_as_it_is(spec: str) -> None:
    assert installer.resolve_spec(spec) == spec


@pytest.mark.parametrize("spec", ["./missing", "missing/dir", "hello-0.1.0-py3-none-any.whl"])
def test_a_missing_path_is_refused(spec: str) -> None:
    with pytest.raises(installer.InstallError, match="no such file or directory"):
        installer.resolve_spec(spec)


def test_names_are_normalized() -> None:
    assert installer.normalize("Racetrack_Hello.JobType") == "racetrack-hello-jobtype"


def test_undo_removes_added_and_restores_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def record(command: str, *args: str, failure: str, capture: bool = False) -> str:
        calls.append((command, *args))
        return ""

    monkeypatch.setattr(installer, "run_uv", record)
    installer.undo(
        {"click": "8.1.0", "pluggy": "1.5.0", "rebuilt": "0.1.0"},
        {"click": "9.0.0", "new-one": "1.0", "rebuilt": "0.1.0"},
    )
    assert calls == [("uninstall", "new-one", "rebuilt"), ("install", "click==8.1.0")]


def test_distributions_lists_this_environment() -> None:
    found = installer.distributions()
    assert found["racetrack-platform"] == "0.1.0"
    assert "click" in found
    assert "ruamel-yaml" in found


def test_the_plugin_distribution_of_a_built_in() -> None:
    assert installer.plugin_distribution("golang") == (
        "racetrack-platform",
        ["docker-proxy", "golang", "local", "python3"],
    )

"""Plugin installation's parts that need no network: specs, names, undo, uv's listing and
failures (which carry uv's output, never a credential)."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core import plugin_install as installer


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

    def record(command: str, *args: str, failure: str, log: object = None) -> str:
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
        ["docker", "docker-proxy", "golang", "kubernetes", "local", "python3"],
    )


def test_a_failing_uv_is_an_error_carrying_its_output(tmp_path: Path) -> None:
    wheel = tmp_path / "broken-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not a zip archive")
    shown: list[str] = []
    with pytest.raises(installer.InstallError) as caught:
        installer.install(str(wheel), log=shown.append)
    error = caught.value
    assert error.message == f"could not install '{wheel}': uv exited with code 1"
    assert "Failed to read from zip file" in error.output
    assert str(error) == f"{error.message}; uv said:\n{error.output}"
    assert "see above" not in str(error)
    assert "environment at" not in error.output  # the server's own folder is left out
    assert "Failed to read from zip file" in "".join(shown)


def test_a_failing_uv_never_shows_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_OFFLINE", "1")
    spec = "hello @ https://someone:s3cret-pw@127.0.0.1:9/hello-0.1.0-py3-none-any.whl"
    with pytest.raises(installer.InstallError) as caught:
        installer.install(spec)
    assert "127.0.0.1:9" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    assert "someone" not in str(caught.value)


def test_long_output_keeps_its_end() -> None:
    text = "".join(f"line {n}\n" for n in range(1000))
    kept = installer.trim_output(text)
    assert kept.splitlines()[-1] == "line 999"
    assert len(kept.splitlines()) == installer.OUTPUT_LINES
    assert len(installer.trim_output("x" * 10_000)) == installer.OUTPUT_CHARS + 3


def test_plugins_are_loaded_afresh_in_a_new_interpreter() -> None:
    names = [plugin["name"] for plugin in installer.load_plugins_afresh()]
    assert {"python3", "golang", "local"} <= set(names)


def test_a_plugin_that_fails_to_load_afresh_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info = tmp_path / "broken_dist-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dist\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[racetrack.plugins]\nbroken = broken_module\n")
    (tmp_path / "broken_module.py").write_text("import no_such_module_here\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(installer.InstallError) as caught:
        installer.load_plugins_afresh()
    assert caught.value.message == (
        "plugin 'broken' (broken_module) could not be imported: "
        "No module named 'no_such_module_here'"
    )

"""``racetrack plugin list|install|uninstall --local``, with uv replaced where it would install."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from racetrack_core import hookimpl
from racetrack_core import plugin_install as installer
from racetrack_core.plugins import PluginManager
from racetrack_core.registry import JobTypeRegistrar
from racetrack_core.testing.plugin import RegisterPlugin

RunCli = Callable[..., Result]

HELLO = {
    "name": "hello",
    "version": "0.1.0",
    "distribution": "racetrack-hello-jobtype",
    "builtin": False,
    "hooks": ["register_job_types"],
    "job_types": ["hello:1.0.0"],
    "infrastructure_targets": [],
}


class HelloPlugin:
    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register("hello", "1.0.0")


class FakeUv:
    """Stands in for uv: records its calls and changes a pretend environment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, installs: dict[str, str]) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.environment = {"racetrack-platform": "0.1.0", "click": "8.5.1"}
        self.installs = installs
        monkeypatch.setattr(installer, "run_uv", self.run_uv)
        monkeypatch.setattr(installer, "distributions", lambda: dict(self.environment))

    def run_uv(self, command: str, *args: str, failure: str, log: object = None) -> str:
        self.calls.append((command, *args))
        if command == "install":
            self.environment.update(self.installs)
        elif command == "uninstall":
            for name in args:
                self.environment.pop(name, None)
        return ""


def no_uv(command: str, *args: str, failure: str, log: object = None) -> str:
    raise AssertionError(f"uv {command} must not run")


def test_list_prints_a_table(run_cli: RunCli, racetrack_register_plugin: RegisterPlugin) -> None:
    racetrack_register_plugin(HelloPlugin(), "hello")
    result = run_cli("plugin", "list", "--local")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "BUILT-IN", "JOB", "TYPES", "TARGETS", "HOOKS"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["python3"][1:4] == ["0.1.0", "yes", "python3:1.0.0"]
    assert by_name["hello"] == ["hello", "-", "no", "hello:1.0.0", "-", "register_job_types"]
    python3_row = next(row for row in rows if row.startswith("python3 "))
    assert header.index("JOB TYPES") == python3_row.index("python3:1.0.0")


def test_list_json_is_every_plugin_info(
    run_cli: RunCli, racetrack_plugin_manager: PluginManager
) -> None:
    result = run_cli("plugin", "list", "--local", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        info.as_dict() for info in racetrack_plugin_manager.describe()
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("plugin", "list"),
        ("plugin", "list", "--json"),
        ("plugin", "install", "racetrack_hello-0.1.0-py3-none-any.whl"),
        ("plugin", "uninstall", "hello"),
    ],
)
def test_without_local_they_act_on_the_remote(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli(*args, "--remote", "http://127.0.0.1:9")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line in {
        "Error: cannot reach Lifecycle at http://127.0.0.1:9/lifecycle: is racetrack up running?",
        "Error: not logged in to http://127.0.0.1:9/lifecycle: "
        "run racetrack login --username <you> --remote http://127.0.0.1:9",
    }


def test_install_of_a_missing_path_is_one_line(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli("plugin", "install", "--local", str(tmp_path / "no-such-plugin"))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: no such file or directory: '{tmp_path / 'no-such-plugin'}'")


def test_install_reports_the_new_plugins(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uv = FakeUv(monkeypatch, {"racetrack-hello-jobtype": "0.1.0"})
    monkeypatch.setattr(installer, "load_plugins_afresh", lambda: [HELLO])
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "racetrack-hello-jobtype"\n', encoding="utf-8"
    )
    result = run_cli("plugin", "install", "--local", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "installed racetrack-hello-jobtype 0.1.0",
        "plugin hello 0.1.0: job types hello:1.0.0",
    ]
    assert uv.calls == [
        ("install", "--reinstall-package", "racetrack-hello-jobtype", str(tmp_path.resolve()))
    ]


def test_reinstalling_a_directory_at_the_same_version_reports_it(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uv = FakeUv(monkeypatch, {})
    uv.environment["racetrack-hello-jobtype"] = "0.1.0"
    monkeypatch.setattr(installer, "load_plugins_afresh", lambda: [HELLO])
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "racetrack_hello_jobtype"\n', encoding="utf-8"
    )
    result = run_cli("plugin", "install", "--local", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "plugin hello 0.1.0: job types hello:1.0.0" in result.stdout.splitlines()


def test_install_of_nothing_new_warns(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeUv(monkeypatch, {})
    monkeypatch.setattr(installer, "load_plugins_afresh", lambda: [HELLO])
    result = run_cli("plugin", "install", "--local", "racetrack-hello-jobtype")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Warning: 'racetrack-hello-jobtype' is installed already: nothing changed"
    ]


def test_install_of_a_package_without_plugins_warns(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeUv(monkeypatch, {"six": "1.16.0"})
    monkeypatch.setattr(installer, "load_plugins_afresh", lambda: [HELLO])
    result = run_cli("plugin", "install", "--local", "six")
    assert result.exit_code == 0
    assert result.stdout == "installed six 1.16.0\n"
    assert "provides no Racetrack plugin" in result.stderr


def test_install_is_undone_when_the_plugins_do_not_load(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv = FakeUv(monkeypatch, {"racetrack-broken": "1.0.0", "click": "9.0.0"})

    def fail_to_load() -> list[dict[str, Any]]:
        raise installer.InstallError("plugin 'broken' could not be imported: No module named 'x'")

    monkeypatch.setattr(installer, "load_plugins_afresh", fail_to_load)
    result = run_cli("plugin", "install", "--local", "racetrack-broken")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "so it was uninstalled again: plugin 'broken' could not be imported" in line
    assert uv.calls[1:] == [("uninstall", "racetrack-broken"), ("install", "click==8.5.1")]


def test_a_failing_uv_is_one_line(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_uv(command: str, *args: str, failure: str, log: object = None) -> str:
        raise installer.InstallError(f"{failure}: uv exited with code 1", "error: not found")

    monkeypatch.setattr(installer, "distributions", dict)
    monkeypatch.setattr(installer, "run_uv", failing_uv)
    result = run_cli("plugin", "install", "--local", "no-such-package-here")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: could not install 'no-such-package-here': uv exited with code 1"
    ]


@pytest.mark.parametrize("name", ["python3", "docker-proxy", "golang"])
def test_uninstalling_a_built_in_is_refused(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli("plugin", "uninstall", "--local", name)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: '{name}' is a built-in plugin, part of the racetrack-platform distribution, and "
        f"cannot be uninstalled; to turn it off, set RACETRACK_DISABLE_PLUGINS={name}"
    ]


@pytest.mark.parametrize("name", ["racetrack", "racetrack-platform", "Racetrack_Platform"])
def test_uninstalling_racetrack_itself_is_refused(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli("plugin", "uninstall", "--local", name)
    assert result.exit_code == 1
    assert "is Racetrack itself, not a plugin" in result.stderr


def test_uninstalling_an_unknown_plugin_names_the_installed_ones(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli("plugin", "uninstall", "--local", "helo")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: no plugin or distribution named 'helo' is installed.")
    assert "docker-proxy, golang, kubernetes, local, python3" in line


def test_uninstalling_a_package_that_is_no_plugin_is_refused(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(installer, "run_uv", no_uv)
    result = run_cli("plugin", "uninstall", "--local", "click")
    assert result.exit_code == 1
    assert "'click' is installed but provides no Racetrack plugin" in result.stderr


def test_uv_output_is_shown_before_the_one_line_error(run_cli: RunCli, tmp_path: Path) -> None:
    wheel = tmp_path / "broken-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not a zip archive")
    result = run_cli("plugin", "install", "--local", str(wheel))
    assert result.exit_code == 1
    assert "Failed to read from zip file" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: could not install '{wheel}': uv exited with code 1"
    )

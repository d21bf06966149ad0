"""The pytest plugin that installing Racetrack adds to every test session in the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]


def _fixtures_of_the_plugin(output: str) -> list[str]:
    names: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("-") and "fixtures defined from" in line:
            inside = "racetrack_core.testing.plugin" in line
        elif line.startswith("="):
            inside = False
        elif inside and line and not line.startswith(" "):
            names.append(line.split()[0])
    return names


def test_every_fixture_of_the_plugin_is_named_racetrack_something(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    # kmock's pytest plugin needs pytest-asyncio, which we do not install (pyproject's addopts).
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider", "-p", "no:kmock")
    names = _fixtures_of_the_plugin(result.stdout.str())
    assert "racetrack_git_server" in names, result.stdout.str()
    assert [name for name in names if not name.startswith("racetrack_")] == []
    # A fixture named like a package would shadow it in a test that imports both.
    assert {"racetrack_core", "racetrack_plugins", "racetrack_cli"}.isdisjoint(names)


def _modules_after_import(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(output.split())


def test_the_plugin_module_loads_nothing_of_racetrack_until_a_fixture_is_used() -> None:
    core = _modules_after_import("import racetrack_core")
    loaded = _modules_after_import("import racetrack_core.testing.plugin")
    assert {m for m in loaded - core if m.startswith("racetrack")} == {
        "racetrack_core.testing",
        "racetrack_core.testing.plugin",
    }


def test_the_helpers_behind_the_fixtures_import_no_pytest() -> None:
    loaded = _modules_after_import(
        "import racetrack_core.testing.gitserver, racetrack_core.testing.server"
    )
    assert "racetrack_core.testing.githttp" in loaded
    assert "pytest" not in loaded
    assert "_pytest" not in loaded

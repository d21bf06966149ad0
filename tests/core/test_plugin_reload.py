"""PluginManager.reload: an upgraded distribution's plugin is imported afresh, an uninstalled
one is dropped, without a new process (what a running Lifecycle does after an install)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from racetrack_core import PluginManager

CODE = """from racetrack_core import hookimpl

@hookimpl
def register_job_types(registry):
    for version in {versions!r}:
        registry.register("reloadme", version)
"""


def install(site: Path, version: str, versions: Sequence[str]) -> None:
    """Put distribution racetrack-reloadme ``version`` on ``site`` (replacing another)."""
    for old in site.glob("racetrack_reloadme*"):
        shutil.rmtree(old)
    (site / "racetrack_reloadme").mkdir()
    (site / "racetrack_reloadme" / "__init__.py").write_text(CODE.format(versions=list(versions)))
    info = site / f"racetrack_reloadme-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: racetrack-reloadme\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text("[racetrack.plugins]\nreloadme = racetrack_reloadme\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("racetrack_reloadme")]:
        del sys.modules[name]


def refs(manager: PluginManager) -> list[str]:
    return sorted(t.ref for t in manager.job_types if t.name == "reloadme")


def test_an_upgrade_and_an_uninstall_are_picked_up(site: Path) -> None:
    install(site, "0.1.0", ["1.0.0"])
    manager = PluginManager().load()
    assert refs(manager) == ["reloadme:1.0.0"]

    install(site, "0.2.0", ["1.0.0", "1.1.0"])
    assert manager.reload([]) == []  # a plugin that is registered already is left as it is
    assert refs(manager) == ["reloadme:1.0.0"]
    assert manager.reload(["reloadme"]) == ["reloadme"]
    assert refs(manager) == ["reloadme:1.0.0", "reloadme:1.1.0"]
    [info] = [info for info in manager.describe() if info.name == "reloadme"]
    assert (info.version, info.distribution) == ("0.2.0", "racetrack-reloadme")

    for old in site.glob("racetrack_reloadme*"):
        shutil.rmtree(old)
    assert manager.reload(["reloadme"]) == []
    assert refs(manager) == []
    assert "reloadme" not in manager.names()


def test_built_in_modules_are_kept(site: Path) -> None:
    manager = PluginManager().load()
    module = sys.modules["racetrack_plugins.python3"]
    assert manager.reload(["python3"]) == ["python3"]
    assert sys.modules["racetrack_plugins.python3"] is module
    assert [t.ref for t in manager.job_types if t.name == "python3"]

"""``go test``: the wrapper's own Go tests, and the sample's tests of its Perform."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from racetrack_plugins.golang import build

from .conftest import SAMPLE

pytestmark = pytest.mark.slow


def go_test(go: str, tmp_path: Path, package: str) -> subprocess.CompletedProcess[str]:
    prepared = build.prepare_source(
        SAMPLE, "go.mod", tmp_path / "src", build.go_version(go), tests=True
    )
    return subprocess.run(
        [go, "test", "-count=1", "-mod=mod", package],
        cwd=prepared.module_dir,
        env=build.go_environment(os.environ, {}),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_wrappers_go_tests_pass(go: str, tmp_path: Path) -> None:
    done = go_test(go, tmp_path, f"./{build.WRAPPER_PACKAGE}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok ")


def test_the_samples_own_go_tests_pass(go: str, tmp_path: Path) -> None:
    done = go_test(go, tmp_path, ".")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok ")


def test_a_build_leaves_the_wrappers_tests_out(go: str, tmp_path: Path) -> None:
    prepared = build.prepare_source(SAMPLE, "go.mod", tmp_path / "src", build.go_version(go))
    wrapper = prepared.module_dir / build.WRAPPER_PACKAGE
    assert not list(wrapper.glob("*_test.go"))
    assert (wrapper / "job.go").read_text().count("job.DocsInputExample()") == 1


def test_the_wrapper_is_gofmt_clean_and_vet_clean(go: str, tmp_path: Path) -> None:
    gofmt = Path(go).resolve().parent / "gofmt"
    unformatted = subprocess.run(
        [str(gofmt), "-l", str(build.WRAPPER_SOURCE)], capture_output=True, text=True, check=True
    )
    assert unformatted.stdout == ""
    prepared = build.prepare_source(SAMPLE, "go.mod", tmp_path / "src", build.go_version(go))
    vet = subprocess.run(
        [go, "vet", "-mod=mod", f"./{build.WRAPPER_PACKAGE}"],
        cwd=prepared.module_dir,
        env=build.go_environment(os.environ, {}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert vet.returncode == 0, vet.stderr

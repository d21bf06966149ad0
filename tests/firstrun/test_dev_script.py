"""``./dev``'s own errors, on this machine: each is one line that says what to do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dev(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "dev"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_an_unknown_command_prints_the_usage() -> None:
    done = dev("deploy")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: ./dev up ")


def test_a_missing_interpreter_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "python3.11"
    done = dev("up", RACETRACK_PYTHON=str(missing))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"dev: no '{missing}' found: install Python 3.11 or newer (Debian, Ubuntu: apt-get "
        "install python3) or set RACETRACK_PYTHON to one"
    ]


def test_an_interpreter_older_than_3_11_is_refused(tmp_path: Path) -> None:
    # Stands in for an old Python: answers the version check as Python 3.9 would.
    old = tmp_path / "python3.9"
    old.write_text(
        '#!/bin/sh\ncase "$2" in *version_info*) exit 1 ;; *python_version*) echo 3.9.18 ;; esac\n'
    )
    old.chmod(0o755)
    done = dev("test", RACETRACK_PYTHON=str(old))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"dev: {old} is Python 3.9.18; Racetrack needs 3.11 or newer: set RACETRACK_PYTHON to one"
    ]

"""The disk full while a build writes a job's environment: a real, small tmpfs.

The server runs in a mount namespace of its own (``unshare -m``) in which the local target's
``envs/`` folder is a 4 MiB tmpfs, so the environment a python3 job needs (about 30 MiB) cannot
be written; nothing outside the namespace is touched. Where a tmpfs cannot be mounted (no
privileges for ``unshare -m``) the test skips outside CI; ``tests/faults/test_disk_full.py``
(a file size limit) covers the unpacking of a build context everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.conftest import in_ci
from tests.faults.conftest import PRIMER_DIR

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TMPFS_SIZE = "4m"


def tmpfs_possible() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "mount -t tmpfs -o size=1m racetrack-probe /mnt"
    done = subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True)
    return done.returncode == 0


def python_under_a_small_envs_tmpfs(home: Path, folder: Path) -> str:
    """A script that runs Python with ``home``'s ``targets/local/envs`` a small tmpfs."""
    envs = home / "targets" / "local" / "envs"
    script = folder / "python-on-small-tmpfs"
    script.write_text(
        "#!/bin/sh\n"
        f"mkdir -p '{envs}'\n"
        "exec unshare -m sh -c "
        f'\'mount -t tmpfs -o size={TMPFS_SIZE},mode=700 racetrack-test "$0" && exec "$@"\' '
        f"'{envs}' '{sys.executable}' \"$@\"\n"
    )
    script.chmod(0o700)
    return str(script)


def test_a_build_on_a_full_disk_fails_cleanly(
    make_server: Callable[..., RacetrackServer], tmp_path: Path
) -> None:
    if not tmpfs_possible():
        if in_ci():
            pytest.fail("unshare -m cannot mount a tmpfs here (it needs CAP_SYS_ADMIN)")
        pytest.skip("unshare -m cannot mount a tmpfs here (it needs CAP_SYS_ADMIN)")
    home = tmp_path / "home"
    server = make_server(python=python_under_a_small_envs_tmpfs(home, tmp_path))
    server.start()
    server.login()

    record = server.deploy_folder(PRIMER_DIR, timeout=180)
    print(f"build on a full disk: {record['status']}: {record['error']}")
    assert record["status"] == "failed", record
    assert "No space left on device" in (record["error"] or ""), record

    assert server.process is not None
    envs = Path(f"/proc/{server.process.pid}/root") / str(home / "targets/local/envs").lstrip("/")
    left = sorted(path.name for path in envs.iterdir() if path.name != ".locks")
    assert left == [], f"half-written environments left: {left}"
    assert server.api("GET", "/job").status_code == 200
    again = server.deploy_folder(PRIMER_DIR, timeout=180)
    assert again["status"] == "failed", again
    assert "No space left on device" in (again["error"] or ""), again

"""The wrapper stands alone: copied as ``racetrack_job_wrapper``, it imports nothing of ours.

A job's environment holds only that copy, so the original wrapper's public modules, which job
code imports, must load from it without ``racetrack_core`` or ``racetrack_plugins``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

WRAPPER = Path(__file__).resolve().parents[3] / "racetrack_plugins" / "python3" / "wrapper"

#: The original wrapper's modules that job code imports, with a name each must define.
PUBLIC = {
    "racetrack_job_wrapper": "call_job",
    "racetrack_job_wrapper.call": "call_job",
    "racetrack_job_wrapper.entrypoint": "JobEntrypoint",
    "racetrack_job_wrapper.endpoint_config": "EndpointConfig",
    "racetrack_job_wrapper.standalone": "serve_job_class",
    "racetrack_job_wrapper.log.logs": "get_logger",
}


def test_every_module_of_the_wrapper_imports_only_relatively() -> None:
    modules = sorted(WRAPPER.rglob("*.py"))
    assert WRAPPER / "log" / "logs.py" in modules
    for module in modules:
        source = module.read_text()
        assert not re.search(r"^\s*(from|import) racetrack", source, re.MULTILINE), module


def test_the_originals_public_modules_load_from_the_standalone_copy(ours_path: Path) -> None:
    script = (
        "import importlib, sys\n"
        f"for name, attribute in {PUBLIC!r}.items():\n"
        "    module = importlib.import_module(name)\n"
        "    assert hasattr(module, attribute), (name, attribute)\n"
        "    assert module.__file__.startswith(sys.argv[1]), module.__file__\n"
        "ours = ('racetrack_core', 'racetrack_plugins')\n"
        "leaked = sorted(m for m in sys.modules if m.startswith(ours))\n"
        "assert not leaked, leaked\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ours_path)],
        env={"PYTHONPATH": str(ours_path), "PATH": "/usr/bin:/bin"},
        cwd=ours_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr

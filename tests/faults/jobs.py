"""Job folders for the fault tests: the primer's manifest with an entrypoint of their own."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import PRIMER_DIR


def job_folder(folder: Path, init: str, *, name: str = "primer", version: str = "0.0.1") -> Path:
    """A job folder whose ``JobEntrypoint.__init__`` runs ``init`` (Python statements, one a
    line) and whose ``perform(number)`` answers like the primer's: whether it is 7907."""
    folder.mkdir(parents=True)
    manifest = (PRIMER_DIR / "job.yaml").read_text().replace("name: primer", f"name: {name}")
    (folder / "job.yaml").write_text(manifest + f"version: '{version}'\n")
    body = "".join(f"        {line}\n" for line in init.splitlines()) or "        pass\n"
    (folder / "entrypoint.py").write_text(
        "import sys\n"
        "import time\n\n\n"
        "class JobEntrypoint:\n"
        "    def __init__(self) -> None:\n"
        f"{body}\n"
        "    def perform(self, number: int) -> bool:\n"
        "        return number == 7907\n"
    )
    return folder

"""Running one build step (a compiler, an installer, an image build) into a deployment's build log.

Every job type and the image builder run their tools the same way: output and errors merged,
each line handed to the build log as it comes, the last lines kept to explain a failure. The
environment, which may hold build secrets, is passed to the tool and never logged.
"""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

#: How many of a failed step's last output lines explain the failure.
TAIL_LINES = 40


def run_logged(
    command: list[str],
    environ: Mapping[str, str],
    log: Callable[[str], None],
    cwd: Path | None = None,
) -> list[str] | None:
    """Run ``command``, logging each line; None on success, else its last lines of output."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line)
            log(line)
        returncode = process.wait()
    return None if returncode == 0 else list(tail)

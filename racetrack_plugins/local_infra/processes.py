"""Job processes: starting one in its own session, telling whether it still runs, stopping it.

A process is identified by its pid together with its start time (field 22 of
``/proc/<pid>/stat``), so that a pid the kernel reused for another program is never mistaken
for a job. Linux only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if no live process has it.

    A zombie (exited, not yet reaped) counts as gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in {"Z", "X"}:
        return None
    return int(fields[19])


def is_running(pid: int, started: int) -> bool:
    """Whether the process that started at ``started`` still runs under ``pid``."""
    return start_time(pid) == started


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to the process group that ``pid`` leads; ignore a group that is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class JobProcess:
    """One running job process: a child this driver started, or one it adopted after a restart.

    Only a child has an exit code; an adopted process that ended reports ``returncode`` None.
    """

    def __init__(self, pid: int, started: int, child: subprocess.Popen[bytes] | None) -> None:
        self.pid = pid
        self.started = started
        self._child = child

    @classmethod
    def spawn(
        cls, command: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> JobProcess:
        """Start ``command`` in a new session, its output appended to ``log_path``."""
        with log_path.open("ab") as log:
            child = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = start_time(child.pid)
        if started is None:  # it exited at once; remember when, to keep the identity unique
            started = -1
        return cls(child.pid, started, child)

    @classmethod
    def adopt(cls, pid: int, started: int) -> JobProcess | None:
        """The process running as ``pid`` since ``started``, or None when it is gone."""
        return cls(pid, started, None) if is_running(pid, started) else None

    @property
    def returncode(self) -> int | None:
        """The exit code once a child has exited (negative: killed by that signal)."""
        return None if self._child is None else self._child.returncode

    def exited(self) -> bool:
        """Whether the process has ended (a child is reaped by this call)."""
        if self._child is not None:
            return self._child.poll() is not None
        return not is_running(self.pid, self.started)

    def terminate(self) -> None:
        """Ask the whole process group to stop (SIGTERM)."""
        if not self.exited():
            signal_group(self.pid, signal.SIGTERM)

    def kill(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for it to end, then SIGKILL its group and reap it.

        The group is killed even when the leader ended by itself, so that no process the job
        started in the background keeps its port.
        """
        deadline = time.monotonic() + grace
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.02)
        signal_group(self.pid, signal.SIGKILL)
        if self._child is not None:
            self._child.wait()
        else:
            while not self.exited():
                time.sleep(0.01)

    def stop(self, grace: float) -> None:
        """SIGTERM, up to ``grace`` seconds, then SIGKILL; do nothing if it has ended."""
        self.terminate()
        self.kill(grace)


def describe_exit(process: JobProcess) -> str:
    """How a process ended, as a phrase: ``exited with code 3``, ``was killed by SIGKILL``."""
    code = process.returncode
    if code is None:
        return "ended (exit code unknown: the process was adopted after a restart)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (exit code {code})"
    return f"exited with code {code}"

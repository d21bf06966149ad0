"""A python3 job that records every call it performs, deployed on a real ``racetrack up``, for
hostile-input tests that must show what reached a job (and what never did).

Each ``perform(mark=...)`` appends ``mark`` (JSON-encoded, one line per call) to the file named
by the job's ``RECORD_FILE`` runtime variable; :meth:`Recorder.performed` reads them back.
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

NAME = "recorder"
VERSION = "0.0.1"
PATH = f"/pub/job/{NAME}/{VERSION}/api/v1/perform"

ENTRYPOINT = '''
import json
import os


class JobEntrypoint:
    def perform(self, mark: str = "") -> str:
        """Record ``mark`` (one JSON line per call) and return it."""
        with open(os.environ["RECORD_FILE"], "a") as record:
            record.write(json.dumps(mark) + "\\n")
        return mark

    def docs_input_example(self) -> dict:
        return {"mark": "example"}
'''


def make_recording_job(folder: Path, record_file: Path) -> Path:
    """Write the job into ``folder``: it records its calls in ``record_file``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: {NAME}
            version: {VERSION}
            owner_email: owner@example.com
            jobtype: python3:latest
            runtime_env:
              RECORD_FILE: "{record_file}"
            jobtype_extra:
              entrypoint_path: entrypoint.py
              entrypoint_class: JobEntrypoint
            """
        )
    )
    (folder / "entrypoint.py").write_text(ENTRYPOINT)
    return folder


@dataclass
class Recorder:
    """A running server with the recording job deployed, and the admin logged in."""

    server: RacetrackServer
    record_file: Path

    @property
    def pub_port(self) -> int:
        return self.server.ports["pub"]

    def performed(self) -> list[str]:
        """The marks of the calls the job performed, in order."""
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text().splitlines()]

    def head(self, *lines: str) -> bytes:
        """A request head for the job's ``perform``, with the admin's token and ``lines``."""
        fixed = [
            f"POST {PATH} HTTP/1.1",
            "host: pub",
            f"x-racetrack-auth: {self.server.token}",
            "content-type: application/json",
        ]
        return ("\r\n".join([*fixed, *lines]) + "\r\n\r\n").encode()

    def exchange(self, raw: bytes, timeout: float = 5) -> bytes:
        """Send ``raw`` to Pub's port and read until Pub closes or ``timeout`` passes quietly."""
        with socket.create_connection(("127.0.0.1", self.pub_port), timeout=timeout) as sock:
            sock.sendall(raw)
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except OSError:  # a timeout: the connection stayed open with nothing more to read
                pass
        return answer


@contextmanager
def recording_server(home: Path) -> Iterator[Recorder]:
    """``racetrack up`` in ``home`` with the recording job deployed."""
    record_file = home.parent / "calls.jsonl"
    with RacetrackServer(home, env=QUICK_ENV) as server:
        server.login()
        record = server.deploy_folder(make_recording_job(home.parent / "recorder", record_file))
        assert record["status"] == "done", f"{record}\n{server.log()}"
        yield Recorder(server, record_file)

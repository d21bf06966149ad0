"""D2: a secret is hidden in build logs, errors and job logs in each of its common encodings."""

from __future__ import annotations

import base64
import json
import re
import secrets
import textwrap
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from racetrack_core.redaction import MASK, Redactor
from racetrack_core.testing.server import QUICK_ENV, RacetrackServer, free_port


def encodings(secret: str) -> dict[str, str]:
    """The spellings of ``secret`` that tools commonly print."""
    raw = secret.encode()
    forms = {
        "plain": secret,
        "quote": quote(secret),
        "quote-all": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "json-utf8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64-urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    forms["quote-lower"] = re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), forms["quote-all"])
    return forms


def leaks(text: str, secret: str) -> list[str]:
    """The encodings of ``secret`` found in ``text``, and ``base64-inside`` when 8 base64
    characters that only the secret's bytes make appear (at any of the three alignments)."""
    found = [name for name, form in encodings(secret).items() if form and form in text]
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret.encode()).decode()
        if encoded[4:12] in text:
            found.append("base64-inside")
    return found


SECRET = 'p@ss wörd<>"\\/&+:' + secrets.token_hex(4)


@pytest.mark.parametrize("form", sorted(encodings(SECRET)))
def test_every_encoding_is_hidden(form: str) -> None:
    spelled = encodings(SECRET)[form]
    text = f"before {spelled} after"
    assert Redactor([SECRET])(text) == f"before {MASK} after"


def test_a_secret_inside_longer_base64_is_hidden() -> None:
    for prefix in ("", "u:", "us:", "user:"):
        basic = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()
        hidden = Redactor([SECRET])(f"Authorization: Basic {basic}")
        assert MASK in hidden
        # What is left of the encoded value cannot hold more than a byte of the secret.
        assert len(hidden.split()[-1].replace(MASK, "")) <= len(prefix) * 4 // 3 + 6


def test_short_values_and_other_text_stay() -> None:
    redact = Redactor(["ab", "", "secret-value"])
    assert redact("ab cd") == "ab cd"
    assert redact("a secret_value, no secret-valu") == "a secret_value, no secret-valu"
    assert not Redactor([])
    assert Redactor([])("text") == "text"


FAILING_JOB = {
    "entrypoint.py": "class JobEntrypoint:\n    def perform(self) -> int:\n        return 1\n",
}

LOUD_JOB = """
import base64
import json
import os
from urllib.parse import quote, quote_plus

value = os.environ["API_KEY"]
for spelled in (
    value,
    quote(value),
    quote(value, safe=""),
    quote_plus(value),
    json.dumps(value),
    json.dumps({"key": value}, ensure_ascii=False),
    base64.b64encode(value.encode()).decode(),
    base64.b64encode(("user:" + value).encode()).decode(),
):
    print("the secret is", spelled, flush=True)


class JobEntrypoint:
    def perform(self) -> str:
        return "ok"
"""


def write_job(folder: Path, name: str, files: dict[str, str], extra: str = "") -> Path:
    """A python3 job folder; ``extra`` lines go under ``jobtype_extra``."""
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
              entrypoint_class: JobEntrypoint
            """
        )
        + extra
    )
    for file_name, content in files.items():
        (folder / file_name).write_text(content)
    return folder


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_build_log_and_error_hide_a_secret_used_in_a_requirement_url(
    racetrack_server: RacetrackServer, tmp_path: Path
) -> None:
    secret = "tok en<>" + secrets.token_hex(6)
    port = free_port()  # nothing listens there: the install fails and quotes the URL
    requirement = f"pkg @ http://127.0.0.1:{port}/simple/${{PIP_TOKEN}}/pkg-1.0.tar.gz\n"
    job = write_job(
        tmp_path / "job",
        "leaky-build",
        {**FAILING_JOB, "requirements.txt": requirement},
        "  requirements_path: requirements.txt\n",
    )
    racetrack_server.login()
    record = racetrack_server.deploy_folder(
        job,
        secret_vars={"build_env": {"PIP_TOKEN": secret}, "runtime_env": {}},
    )
    assert record["status"] == "failed", record
    log = racetrack_server.api("GET", f"/deploy/{record['id']}/build-logs?tail=0").json()["logs"]
    assert f"127.0.0.1:{port}" in log + str(record["error"]), log  # the URL was quoted
    assert leaks(log, secret) == [], log
    assert leaks(str(record["error"]), secret) == [], record["error"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_job_logs_hide_a_runtime_secret(racetrack_server: RacetrackServer, tmp_path: Path) -> None:
    secret = "run time<>" + secrets.token_hex(6)
    job = write_job(tmp_path / "job", "leaky-job", {"entrypoint.py": LOUD_JOB})
    racetrack_server.login()
    record = racetrack_server.deploy_folder(
        job, secret_vars={"build_env": {}, "runtime_env": {"API_KEY": secret}}
    )
    assert record["status"] == "done", f"{record}\n{racetrack_server.log()}"
    logs = racetrack_server.api("GET", "/job/leaky-job/0.0.1/logs?tail=0").json()["logs"]
    assert logs.count("the secret is") == 8, logs
    assert leaks(logs, secret) == [], logs

    streamed = []
    with httpx.stream(
        "GET",
        f"{racetrack_server.lifecycle}/api/v1/job/leaky-job/0.0.1/logs/stream?tail=100",
        headers={"X-Racetrack-Auth": racetrack_server.token},
        timeout=30,
    ) as answer:
        for line in answer.iter_lines():
            streamed.append(line)
            if sum("the secret is" in seen for seen in streamed) == 8:
                break
    assert leaks("\n".join(streamed), secret) == [], streamed


CRASHING_LATER = """
import os
import sys
from pathlib import Path

marker = Path(os.environ["TMPDIR"] if "TMPDIR" in os.environ else "/tmp") / os.environ["MARKER"]
if marker.exists():
    print("about to fail with", os.environ["API_KEY"], flush=True)
    sys.exit(3)


class JobEntrypoint:
    def perform(self) -> str:
        marker.write_text("crash from now on")
        os._exit(1)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_crashed_jobs_error_hides_its_runtime_secret(tmp_path: Path) -> None:
    home = tmp_path / "racetrack-home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "targets:\n  local:\n    restart_backoff_seconds: 0.1\n"
        "    restart_backoff_max_seconds: 0.2\n"
    )
    secret = "crash key<>" + secrets.token_hex(6)
    marker = "racetrack-crash-" + secrets.token_hex(6)
    job = write_job(tmp_path / "job", "crash-later", {"entrypoint.py": CRASHING_LATER})
    with RacetrackServer(home, env=QUICK_ENV) as server:
        server.login()
        record = server.deploy_folder(
            job,
            manifest={"runtime_env": {"MARKER": marker}},
            secret_vars={"build_env": {}, "runtime_env": {"API_KEY": secret}},
        )
        assert record["status"] == "done", f"{record}\n{server.log()}"
        server.call("crash-later", "0.0.1", {})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job_record = server.api("GET", "/job/crash-later/0.0.1").json()
            if job_record.get("error"):
                break
            time.sleep(0.5)
        error = str(job_record.get("error"))
        assert "about to fail with" in error, job_record
        assert leaks(error, secret) == [], error

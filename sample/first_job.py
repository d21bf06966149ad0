"""Deploy ``sample/python-primer`` to a running ``racetrack up`` and call it through Pub.

``./dev up`` runs this once the server answers. It speaks only HTTP (the wire API in
docs/lifecycle.md): log in as admin, upload the sample as a build context, print each phase
as the deployment reaches it, then call the job the way the user guide's ``curl`` does.

    python sample/first_job.py [--lifecycle URL] [--pub URL] [--password-file FILE]

The admin password comes from RACETRACK_ADMIN_PASSWORD or the password file that the first
``racetrack up`` wrote (``~/.racetrack/server/admin-password``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context

PRIMER = Path(__file__).resolve().parent / "python-primer"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lifecycle", default="http://127.0.0.1:7102/lifecycle")
    parser.add_argument("--pub", default="http://127.0.0.1:7105/pub")
    home = Path(os.environ.get("RACETRACK_HOME", "~/.racetrack/server")).expanduser()
    parser.add_argument("--password-file", type=Path, default=home / "admin-password")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the server")
    args = parser.parse_args()

    with httpx.Client(timeout=30) as client:
        wait_for(client, f"{args.lifecycle}/api/v1/info", args.wait)
        password = os.environ.get("RACETRACK_ADMIN_PASSWORD")
        if not password:
            if not args.password_file.is_file():
                print(
                    f"no admin password: set RACETRACK_ADMIN_PASSWORD or keep {args.password_file}",
                    file=sys.stderr,
                )
                return 1
            password = args.password_file.read_text().strip()
        login = client.post(
            f"{args.lifecycle}/api/v1/users/login",
            json={"username": "admin", "password": password},
        )
        if login.status_code != 200:
            print(f"login failed: {login.json()['error']}", file=sys.stderr)
            return 1
        auth = {"X-Racetrack-Auth": login.json()["token"]}

        manifest = load_manifest(PRIMER / "job.yaml").data
        print(f"deploying {PRIMER} (job {manifest['name']})")
        started = time.monotonic()
        answer = client.post(
            f"{args.lifecycle}/api/v1/deploy",
            json={"manifest": manifest, "build_context": pack_build_context(PRIMER), "force": True},
            headers=auth,
        )
        if answer.status_code != 200:
            print(f"deploy refused: {answer.json()['error']}", file=sys.stderr)
            return 1
        deployment = follow(client, f"{args.lifecycle}/api/v1/deploy/{answer.json()['id']}", auth)
        if deployment["status"] != "done":
            print(f"deployment failed: {deployment['error']}", file=sys.stderr)
            return 1
        print(f"deployed in {time.monotonic() - started:.1f} s: {deployment['job']['pub_url']}")

        url = f"{args.pub}/job/primer/latest/api/v1/perform"
        print(f'POST {url} {{"number": 7907}}')
        call = client.post(url, json={"number": 7907}, headers=auth)
        print(call.text)
        return 0 if call.status_code == 200 else 1


def wait_for(client: httpx.Client, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not answer at {url} within {seconds:g} s")
        time.sleep(0.2)


def follow(client: httpx.Client, url: str, auth: dict[str, str]) -> dict[str, Any]:
    shown = 0
    while True:
        record: dict[str, Any] = client.get(url, headers=auth).json()
        phases = record.get("phases")
        assert isinstance(phases, list)
        for step in phases[shown:]:
            print(f"  {step['phase']}")
        shown = len(phases)
        if record["status"] != "in_progress":
            return record
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())

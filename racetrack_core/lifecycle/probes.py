"""Waiting for a new replica to serve: ``/live`` with the right deployment, then ``/ready``."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from racetrack_core.infrastructure import DeployError, Replica

#: Polling starts fast (a small job is up in a fraction of a second) and slows down.
FIRST_DELAY = 0.05
LONGEST_DELAY = 1.0


def wait_until_serving(
    replica: Replica,
    *,
    live_timeout: float,
    ready_timeout: float,
    crashed: Callable[[], str | None],
    tail: Callable[[], str],
) -> None:
    """Return once the replica is live (for this very deployment) and ready.

    ``/live`` must carry the replica's own ``deployment_timestamp``, so that an older process
    still answering on the address is never taken for the new one. Raise DeployError with the
    reason and the job's last output when it crashes or does not answer in time (a timeout's
    sentence also ends with the last lines the job printed, so that its cause is in the error).
    """
    for url in replica.urls:  # every instance of a replicated deployment
        with httpx.Client(base_url=url, timeout=5.0, trust_env=False) as client:
            _wait(client, "/live", replica, live_timeout, crashed, tail)
            _wait(client, "/ready", replica, ready_timeout, crashed, tail)


def _wait(
    client: httpx.Client,
    path: str,
    replica: Replica,
    timeout: float,
    crashed: Callable[[], str | None],
    tail: Callable[[], str],
) -> None:
    deadline = time.monotonic() + timeout
    delay = FIRST_DELAY
    last = "no answer yet"
    while True:
        reason = crashed()
        if reason is not None:
            raise DeployError(f"the job stopped while starting: {reason}", log_tail=tail())
        try:
            answer = client.get(path)
            if answer.status_code == 200 and _confirms(path, answer, replica):
                return
            failure = startup_failure(answer)
            if failure is not None:
                raise DeployError(f"the job failed to start: {failure}", log_tail=tail())
            last = f"{path} answered {answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{path} did not answer: {type(exc).__name__}"
        if time.monotonic() >= deadline:
            what = "live" if path == "/live" else "ready"
            output = tail()
            said = f". Last lines of its output:\n{_last_lines(output)}" if output.strip() else ""
            raise DeployError(
                f"the job did not become {what} within {timeout:g} s ({last}){said}",
                log_tail=output,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, LONGEST_DELAY)


ERROR_TAIL_LINES = 5
"""How many of the job's last output lines a timeout's error repeats (the build log has 20)."""


def _last_lines(output: str) -> str:
    return "\n".join(output.strip().splitlines()[-ERROR_TAIL_LINES:])


def startup_failure(answer: httpx.Response) -> str | None:
    """The error a job reports on ``/live`` when its start-up failed for good, if any."""
    if answer.status_code < 500:
        return None
    try:
        body = answer.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("live") is False and body.get("error"):
        return str(body["error"])
    return None


def check_live(client: httpx.Client, url: str) -> str | None:
    """None when the job at ``url`` answers ``/live``; otherwise what is wrong with it."""
    try:
        answer = client.get(f"{url}/live")
    except httpx.HTTPError as exc:
        return f"/live did not answer: {type(exc).__name__}"
    if answer.status_code == 200:
        return None
    return startup_failure(answer) or f"/live answered {answer.status_code}"


def check_ready(client: httpx.Client, url: str) -> str | None:
    """None when the job at ``url`` answers ``/ready`` with 200; otherwise what is wrong."""
    try:
        answer = client.get(f"{url}/ready")
    except httpx.HTTPError as exc:
        return f"/ready did not answer: {type(exc).__name__}"
    return None if answer.status_code == 200 else f"/ready answered {answer.status_code}"


def _confirms(path: str, answer: httpx.Response, replica: Replica) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return path == "/ready"
    if path == "/live":
        stamp = body.get("deployment_timestamp") if isinstance(body, dict) else None
        return stamp is None or str(stamp) == str(replica.deployment_timestamp)
    return not (isinstance(body, dict) and body.get("ready") is False)

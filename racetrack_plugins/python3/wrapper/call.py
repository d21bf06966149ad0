"""The original wrapper's chaining module: ``from racetrack_job_wrapper.call import call_job``.

Job code written for the original calls ``call_job(self, 'adder', '/api/v1/perform', payload)``:
the first argument is the calling entrypoint (the original read the current request from it;
here the tracing id comes from the call's context, so it is only checked). The calls go
through ``chaining.call_job``: the same URL, token and tracing header, and an error raises
``JobCallError``, which is a ``RuntimeError`` as the original's errors were.

``async_job_call`` submits the call to Pub's asynchronous calls (``/async/new/job/...``) and
polls for the answer, so a call longer than a proxy's timeout still returns.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

from .chaining import JobCallError, _url, send
from .chaining import call_job as _call_job

__all__ = ["async_job_call", "call_job", "call_job_coroutine"]

#: Seconds that one poll of an asynchronous call may wait for Pub's answer.
POLL_TIMEOUT = 70.0


def call_job(
    entrypoint: object,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """Call another job's endpoint through Pub and return its JSON answer.

    ``entrypoint`` is the calling job's instance (``self``), as in the original.
    """
    return _call_job(
        job_name, path, payload, version=version, method=method, timeout=_timeout(timeout)
    )


async def call_job_coroutine(
    entrypoint: object,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """``call_job`` for ``async def`` code: the call waits in a thread, not on the loop."""
    return await asyncio.to_thread(
        call_job, entrypoint, job_name, path, payload, version, method, timeout
    )


def async_job_call(
    entrypoint: object,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any = None,
    version: str = "latest",
    method: str = "POST",
) -> Any:
    """Call another job as an asynchronous call of Pub: submit it, then poll for its answer."""
    url, request_path = _url(job_name, version, path)
    pub_url = url[: url.index("/job/")]
    submit_url = pub_url + "/async/new" + url[len(pub_url) :]
    data = None if payload is None else json.dumps(payload).encode()
    status, body = send(submit_url, method, data, POLL_TIMEOUT, job_name, version, request_path)
    try:
        task_id = str(json.loads(body)["task_id"])
    except (ValueError, KeyError, TypeError):
        raise JobCallError(
            job_name, version, request_path, status, "Pub's answer to the call has no task_id"
        ) from None
    poll_url = f"{pub_url}/async/task/{urllib.parse.quote(task_id, safe='')}/poll"
    while True:
        try:
            status, body = send(
                poll_url, "GET", None, POLL_TIMEOUT, job_name, version, request_path
            )
        except JobCallError as error:
            if error.status in (408, 504) or (error.status is None and "timed out" in error.error):
                continue
            raise
        if status == 200:
            return json.loads(body) if body.strip() else None
        time.sleep(0.2)  # 202: not finished yet


def _timeout(timeout: float | None) -> float:
    # The original's None meant no timeout; urllib's socket timeout needs a number.
    return 24 * 3600.0 if timeout is None else float(timeout)

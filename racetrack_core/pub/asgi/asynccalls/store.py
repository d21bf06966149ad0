"""Pub's side of the task storage: Lifecycle's ``/api/v1/async/task`` routes, as a client.

Every request carries the services' internal token. A task is addressed by its *key*, a digest
of the id its caller holds: Lifecycle, its logs and its database never see the id itself, which
is the capability that reads the job's answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

logger = logging.getLogger("racetrack.pub")


def task_key(task_id: str) -> str:
    """The storage key of a task id: 128 bits of its SHA-256, in hex."""
    return hashlib.sha256(task_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class StoreUnavailable(Exception):
    """Lifecycle did not answer a storage request (unreachable, timed out or broken)."""


class TaskGone(Exception):
    """The task is unknown, or expired (Lifecycle's 404)."""


class TaskTaken(Exception):
    """The task finished, or another worker took it over (Lifecycle's 409)."""


@dataclass(slots=True)
class Task:
    """A stored asynchronous call, as Lifecycle answers it."""

    key: str
    job_name: str
    job_version: str
    method: str
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    caller: str
    status: str
    attempts: int
    response_status: int | None
    response_headers: list[tuple[str, str]]
    response_body: bytes
    error: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            key=data["id"],
            job_name=data["job_name"],
            job_version=data["job_version"],
            method=data["method"],
            path=data["path"],
            query=data["query"],
            request_headers=[(k, v) for k, v in data.get("request_headers") or []],
            request_body=base64.b64decode(data.get("request_body") or ""),
            caller=data.get("caller") or "",
            status=data["status"],
            attempts=data["attempts"],
            response_status=data.get("response_status"),
            response_headers=[(k, v) for k, v in data.get("response_headers") or []],
            response_body=base64.b64decode(data.get("response_body") or ""),
            error=data.get("error"),
        )


class TaskStore:
    """Creates, reads and updates tasks through Lifecycle."""

    def __init__(
        self, lifecycle_url: str, token: str, session: aiohttp.ClientSession, timeout: float
    ) -> None:
        self._base = lifecycle_url.rstrip("/") + "/api/v1/async/task"
        self._headers = {"X-Racetrack-Auth": token}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def create(self, fields: dict[str, Any]) -> None:
        await self._request("POST", self._base, fields)

    async def get(self, key: str) -> Task:
        return Task.from_json(await self._request("GET", f"{self._base}/{key}"))

    async def update(self, key: str, **changes: Any) -> None:
        """Change a task; ``if_attempts=n`` applies only while its attempts are still ``n``."""
        if isinstance(changes.get("response_body"), bytes):
            changes["response_body"] = base64.b64encode(changes["response_body"]).decode()
        await self._request("PATCH", f"{self._base}/{key}", changes)

    async def idle(self, idle_for: float) -> list[Task]:
        """Ongoing tasks that no worker touched for ``idle_for`` seconds."""
        url = URL(self._base).with_query(status="ongoing", idle_for=f"{idle_for:g}")
        return [Task.from_json(item) for item in await self._request("GET", url)]

    async def purge(self) -> int:
        deleted: int = (await self._request("DELETE", self._base))["deleted"]
        return deleted

    async def _request(self, method: str, url: str | URL, body: Any = None) -> Any:
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            kind = "timed out" if isinstance(error, asyncio.TimeoutError) else "is unreachable"
            raise StoreUnavailable(f"Lifecycle {kind} ({type(error).__name__})") from None
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if status in (200, 201):
            return payload
        message = payload.get("error") if isinstance(payload, dict) else None
        if status == 404:
            raise TaskGone(message or "no such task")
        if status == 409:
            raise TaskTaken(message or "the task was taken over")
        logger.warning(
            "Lifecycle answered %s on async tasks with %d: %r", method, status, raw[:300]
        )
        raise StoreUnavailable(f"Lifecycle answered the task storage with {status}")

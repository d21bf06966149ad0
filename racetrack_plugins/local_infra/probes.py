"""Asking a job on a loopback port whether it answers."""

from __future__ import annotations

import http.client
import json
import socket

from racetrack_plugins.local_infra.ports import HOST


def accepts_connections(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def live_deployment_timestamp(port: int, timeout: float = 1.0) -> int | None:
    """The ``deployment_timestamp`` that ``GET /live`` reports, or None if it does not answer."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", "/live")
        response = connection.getresponse()
        if response.status != 200:
            return None
        answer = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    timestamp = answer.get("deployment_timestamp") if isinstance(answer, dict) else None
    return timestamp if isinstance(timestamp, int) else None

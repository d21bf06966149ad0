"""Choosing the loopback port a job listens on."""

from __future__ import annotations

import socket
from collections.abc import Collection

HOST = "127.0.0.1"


def is_free(port: int) -> bool:
    """Whether a server could listen on ``127.0.0.1:port`` now.

    The probe sets SO_REUSEADDR as servers do, so a port that only has connections in
    TIME_WAIT (a job that just exited) counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def choose(preferred: int | None = None, taken: Collection[int] = ()) -> int:
    """``preferred`` when it is free, else a free port that is not in ``taken``.

    The kernel may hand the same port out again once its probe socket closes, so ports that
    other replicas hold (even ones not listening yet) are passed in ``taken``.
    """
    if preferred is not None and preferred not in taken and is_free(preferred):
        return preferred
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise OSError("no free port on 127.0.0.1 after 100 tries")


def url(port: int) -> str:
    """The base URL of a job listening on ``port``."""
    return f"http://{HOST}:{port}"

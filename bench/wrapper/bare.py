"""The baseline: a bare Starlette app answering the wrapper's JSON, run like the wrapper runs.

``python bench/wrapper/bare.py --port P [--sync] [--log-level info] [--access-log]``. It reads
and parses the JSON body (as the wrapper does) and answers the same bytes on
``POST /api/v1/perform``; ``uvicorn.run`` gets the same arguments as in
``racetrack_plugins/python3/wrapper/__main__.py``, the access log off unless ``--access-log``.

Two endpoints, one per kind of ``perform``, so that each wrapper variant is compared with the
same kind of work in a bare app:

- the default, an ``async def`` endpoint: runs on the event loop, like an ``async def perform``;
- ``--sync``: the work is a ``def`` function that Starlette runs in its threadpool
  (``run_in_threadpool``, the hop Starlette makes for every ``def`` endpoint), like a
  ``def perform``. The body is read on the event loop first, because a ``def`` endpoint cannot
  await it, and every app that takes a JSON body has to read it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = json.dumps({"ok": True, "job": "bench", "answer": 42}).encode()


def answer(arguments: dict[str, Any]) -> Response:
    return Response(ANSWER, media_type="application/json")


async def async_endpoint(request: Request) -> Response:
    return answer(await request.json())


async def sync_endpoint(request: Request) -> Response:
    return await run_in_threadpool(answer, await request.json())


def create_app(sync: bool) -> Starlette:
    endpoint = sync_endpoint if sync else async_endpoint
    return Starlette(routes=[Route("/api/v1/perform", endpoint, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sync", action="store_true", help="do the work in Starlette's threadpool")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="one log line per request")
    options = parser.parse_args()
    uvicorn.run(
        create_app(options.sync),
        host="127.0.0.1",
        port=options.port,
        log_level=options.log_level,
        access_log=options.access_log,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()

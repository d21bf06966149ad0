"""The baseline: a bare Starlette app answering the wrapper's JSON, run like the wrapper runs.

``python bench/wrapper/bare.py --port P [--log-level info]``. It reads and parses the JSON body
(as the wrapper does) and answers the same bytes on ``POST /api/v1/perform``; ``uvicorn.run``
gets the same arguments as in ``racetrack_plugins/python3/wrapper/__main__.py``.
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = json.dumps({"ok": True, "job": "bench", "answer": 42}).encode()


async def perform(request: Request) -> Response:
    await request.json()
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/api/v1/perform", perform, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    options = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=options.port,
        log_level=options.log_level,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()

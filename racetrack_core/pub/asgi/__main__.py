"""``python -m racetrack_core.pub.asgi``: serve Pub's ASGI app alone on uvicorn, from ``PUB_*``.

The front server is not in front of it here; ``python -m racetrack_core.pub`` serves both.
"""

from __future__ import annotations

import argparse

from racetrack_core.pub.asgi.serving import serve


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m racetrack_core.pub.asgi",
        description="Serve Pub's ASGI app alone, configured from PUB_* variables (docs/pub.md).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7105)
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (default 1)"
    )
    options = parser.parse_args()
    serve(options.host, options.port, options.workers)


if __name__ == "__main__":
    main()

"""``python -m racetrack_core.pub``: serve Pub alone, configured from ``PUB_*`` variables."""

from __future__ import annotations

import argparse

from racetrack_core.pub.serving import serve


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m racetrack_core.pub",
        description="Serve Pub, configured from PUB_* environment variables (docs/pub.md).",
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

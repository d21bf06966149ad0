"""``python -m racetrack_core.pub``: serve Pub as ``racetrack serve pub`` does."""

from __future__ import annotations

import argparse

from racetrack_core.pub.assembly import serve


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m racetrack_core.pub",
        description="Serve Pub as racetrack serve pub does, configured from PUB_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7105)
    options = parser.parse_args()
    serve(options.host, options.port)


if __name__ == "__main__":
    main()

"""The hello job's own runtime: a standard-library HTTP server that answers with a greeting.

It honours Racetrack's runtime contract: it listens on 127.0.0.1 at ``JOB_PORT``, answers
``/live`` with the deployment timestamp, ``/ready`` and ``/health``, and serves its routes both
at the root and under ``/pub/job/{name}/{version}``. It imports nothing but the standard
library, so a recipe can copy this one file next to a job.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser(description="Answer every call with a greeting.")
    parser.add_argument("--greeting", required=True)
    parser.add_argument("--job-type", default="hello", help="the job type version it runs on")
    arguments = parser.parse_args()
    prefix = f"/pub/job/{os.environ.get('JOB_NAME', '')}/{os.environ.get('JOB_VERSION', '')}"
    timestamp = int(os.environ.get("JOB_DEPLOYMENT_TIMESTAMP", "0"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            path = self.path.split("?", 1)[0]
            path = path.removeprefix(prefix) or "/"
            answers: dict[str, object] = {
                "/live": {"live": True, "deployment_timestamp": timestamp},
                "/ready": {"ready": True},
                "/health": {"status": "pass", "deployment_timestamp": timestamp},
            }
            greeting = {"greeting": arguments.greeting, "job_type": arguments.job_type}
            body = json.dumps(answers.get(path, greeting)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    port = int(os.environ.get("JOB_PORT", "7000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""The user guide's prime check as a plain HTTP server (standard library only).

Racetrack forwards ``/api/v1/perform`` to ``/perform`` here; ``/live``, ``/docs`` and the other
runtime routes are Racetrack's, not this server's.
"""

import json
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def is_prime(number: int) -> bool:
    if number < 2:
        return False
    return all(number % divisor for divisor in range(2, math.isqrt(number) + 1))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/perform":
            self.answer(404, {"error": f"no route {self.path}"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            number = body["number"]
            if not isinstance(number, int):
                raise TypeError("number must be an integer")
        except (ValueError, KeyError, TypeError) as error:
            self.answer(400, {"error": f'give {{"number": N}}: {error}'})
            return
        self.answer(200, is_prime(number))

    def do_GET(self) -> None:
        if self.path == "/version":
            self.answer(200, {"job_version": os.environ.get("JOB_VERSION", "")})
            return
        self.answer(404, {"error": f"no route {self.path}"})

    def answer(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    port = int(os.environ.get("JOB_USER_MODULE_PORT", "7004"))
    # The server runs in the job's own network namespace: only the proxy reaches it.
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104

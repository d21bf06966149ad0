"""Cross-site request forgery protection for every Dashboard form.

A browser gets a random value in an HttpOnly, SameSite=Strict cookie; each form carries an
HMAC of that value under the server's key. A POST is accepted only when its form token matches
its own cookie, so another site can neither read nor forge it. Requests the browser marks as
cross-site (``Sec-Fetch-Site``) or whose ``Origin`` is another host are refused before that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "racetrack_csrf"
FIELD = "csrf_token"
COOKIE_PATH = "/dashboard"


class CsrfRefused(Exception):
    """A form arrived without a valid token, or from another site."""


class Csrf:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_secret(cls, secret: str | None) -> Csrf:
        """Keyed by the server's internal secret (stable across restarts), or at random."""
        if not secret:
            return cls(secrets.token_bytes(32))
        return cls(hmac.new(secret.encode(), b"racetrack-dashboard-csrf", hashlib.sha256).digest())

    def seed(self, request: Request) -> str:
        """The browser's cookie value, or a new one (remembered for ``attach``)."""
        existing = request.cookies.get(COOKIE, "")
        if len(existing) >= 32:
            return existing
        fresh = getattr(request.state, "csrf_seed", None)
        if fresh is None:
            fresh = secrets.token_urlsafe(32)
            request.state.csrf_seed = fresh
        return str(fresh)

    def token(self, request: Request) -> str:
        """The token the page's forms carry."""
        return self._sign(self.seed(request))

    def attach(self, request: Request, response: Response) -> None:
        """Set the cookie when this request created its seed."""
        fresh = getattr(request.state, "csrf_seed", None)
        if fresh is not None:
            response.set_cookie(
                COOKIE,
                fresh,
                httponly=True,
                samesite="strict",
                path=COOKIE_PATH,
                secure=request.url.scheme == "https",
            )

    def check(self, request: Request, submitted: object) -> None:
        """CsrfRefused unless the request is same-site and carries its cookie's token."""
        if request.headers.get("sec-fetch-site", "same-origin") not in (
            "same-origin",
            "same-site",
            "none",
        ):
            raise CsrfRefused("the form was sent from another site")
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
            raise CsrfRefused("the form was sent from another site")
        seed = request.cookies.get(COOKIE, "")
        if not seed or not isinstance(submitted, str):
            raise CsrfRefused("the form has no security token")
        if not hmac.compare_digest(self._sign(seed), submitted):
            raise CsrfRefused("the form's security token does not match")

    def _sign(self, seed: str) -> str:
        return hmac.new(self._key, seed.encode(), hashlib.sha256).hexdigest()

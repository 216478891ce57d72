"""Who may talk to the gateway: one bearer token per run, or the same token in an HttpOnly cookie.

The token is generated per run (``secrets.token_urlsafe``) and stored 0600 in the run folder, or taken
from ``KINETIC_API_TOKEN``. It is registered with the log redactor so no log line can carry it, and it is
compared in constant time. Browsers get it once through ``GET /login?token=...``, which sets an HttpOnly,
SameSite=Strict cookie; a POST authenticated by that cookie must also carry ``X-Kinetic-Request: 1``,
which a cross-site form cannot send (the CSRF guard). A Bearer header needs no such header.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request

from ..core.errors import KineticError
from ..logs import register_secret

ENV_TOKEN = "KINETIC_API_TOKEN"
TOKEN_FILE = "api_token"
COOKIE = "kinetic_token"
CSRF_HEADER = "x-kinetic-request"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiAuthError(Exception):
    """A request without valid credentials (401) or without the CSRF header (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_token(run_dir: Path, env: dict[str, str] | None = None) -> tuple[str, str]:
    """(token, where it came from): ``KINETIC_API_TOKEN``, or a fresh one written 0600 to the run folder."""
    environ = os.environ if env is None else env
    given = environ.get(ENV_TOKEN, "")
    if given:
        if len(given) < 16:
            raise KineticError(f"{ENV_TOKEN} is too short: use at least 16 characters")
        register_secret(given)
        return given, ENV_TOKEN
    token = secrets.token_urlsafe(32)
    register_secret(token)
    path = Path(run_dir) / TOKEN_FILE
    path.unlink(missing_ok=True)  # a resumed run gets a new token; the old file may be someone else's
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, str(path)


def check_host(host: str, token_from_env: bool) -> None:
    """Binding beyond loopback must be asked for explicitly and needs a token the operator chose."""
    if host in LOOPBACK:
        return
    if not token_from_env:
        raise KineticError(f"--api-host {host} is not loopback: set {ENV_TOKEN} (16+ characters) so the "
                           "gateway is not reachable with a token only printed on this terminal")


class TokenCheck:
    """Checks a request's credentials against the run's token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def matches(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(self._token, str(candidate).encode())

    def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not self.matches(value.strip()):
                raise ApiAuthError(401, "invalid bearer token")
            return
        cookie = request.cookies.get(COOKIE)
        if cookie is None:
            raise ApiAuthError(401, "missing credentials: send Authorization: Bearer <token>")
        if not self.matches(cookie):
            raise ApiAuthError(401, "invalid session cookie: log in again with the run's /login link")
        if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
            raise ApiAuthError(403, "cookie-authenticated POST needs the header X-Kinetic-Request: 1")

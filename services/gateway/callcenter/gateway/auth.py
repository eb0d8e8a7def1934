"""Admin authentication for the dashboard and the REST API.

One secret, ``gateway.admin_token`` (``ADMIN_TOKEN``), admits a supervisor two ways:

- ``Authorization: Bearer <token>`` on any request (scripts, the API);
- the login form at ``/dashboard/login``, which sets an HttpOnly, SameSite cookie holding an expiry
  and an HMAC of it keyed by the token (never the token itself), so browsers and ``EventSource``
  carry it without scripts ever seeing a secret.

With no admin token configured everything behind :func:`require_admin` is locked (401), never open.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException, Request, Response
from starlette.requests import HTTPConnection

COOKIE_NAME = "cc_admin"
COOKIE_TTL_S = 12 * 3600
NOT_CONFIGURED = (
    "The dashboard is locked: no admin token is configured. Set ADMIN_TOKEN "
    "(or CALLCENTER_GATEWAY__ADMIN_TOKEN) and restart the gateway."
)


def _admin_token(conn: HTTPConnection) -> bytes | None:
    deps = conn.app.state.deps
    token = deps.config.gateway.admin_token if deps is not None else None
    if token is None or not token.get_secret_value():
        return None
    return token.get_secret_value().encode()


def _signature(token: bytes, expires: int) -> str:
    return hmac.new(token, f"dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def cookie_value(token: bytes, *, now: float | None = None) -> str:
    """A session cookie value valid for :data:`COOKIE_TTL_S`."""
    expires = int((now if now is not None else time.time()) + COOKIE_TTL_S)
    return f"{expires}.{_signature(token, expires)}"


def _valid_cookie(token: bytes, value: str) -> bool:
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    # Compared as bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    expected = _signature(token, expires).encode()
    return expires > time.time() and hmac.compare_digest(expected, signature.encode())


def token_matches(conn: HTTPConnection, candidate: str) -> bool:
    """Whether ``candidate`` is the configured admin token (constant time)."""
    token = _admin_token(conn)
    return token is not None and hmac.compare_digest(token, candidate.encode())


def is_admin(conn: HTTPConnection) -> bool:
    """Whether the request carries the admin bearer token or a valid session cookie."""
    token = _admin_token(conn)
    if token is None:
        return False
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token, credentials.strip().encode()):
        return True
    cookie = conn.cookies.get(COOKIE_NAME)
    return bool(cookie) and _valid_cookie(token, cookie)


def _bearer_failures_key(request: Request) -> str | None:
    deps = request.app.state.deps
    if deps is None:
        return None
    client = request.client.host if request.client else "unknown"
    return deps.key(f"admin:bearer_failures:{client}")


async def require_admin(request: Request) -> None:
    """FastAPI dependency: 401 unless the caller is an admin.

    Wrong Bearer tokens are throttled like the login form: after
    ``security.admin_auth_max_failures`` of them from one client address within
    ``security.admin_auth_window_s``, every request from it is refused (429), the right token too,
    until the window passes (so a guesser learns nothing from the answers).
    """
    failures_key = _bearer_failures_key(request)
    if failures_key is not None:
        limits = request.app.state.deps.config.security
        redis = request.app.state.deps.redis
        if int(await redis.get(failures_key) or 0) >= limits.admin_auth_max_failures:
            raise HTTPException(
                status_code=429,
                detail="Too many wrong admin tokens; try again in a few minutes.",
                headers={"Retry-After": str(int(limits.admin_auth_window_s))},
            )
    if not is_admin(request):
        configured = _admin_token(request) is not None
        scheme, _, _ = request.headers.get("authorization", "").partition(" ")
        if failures_key is not None and configured and scheme.lower() == "bearer":
            failures = await redis.incr(failures_key)
            if failures == 1:
                await redis.expire(failures_key, int(limits.admin_auth_window_s))
        raise HTTPException(
            status_code=401,
            detail="Admin token required." if configured else NOT_CONFIGURED,
            headers={"WWW-Authenticate": 'Bearer realm="callcenter"'},
        )


def set_session_cookie(request: Request, response: Response) -> None:
    """Log the browser in (call only after :func:`token_matches`)."""
    token = _admin_token(request)
    assert token is not None
    secure = request.app.state.deps.config.gateway.public_base_url.startswith("https://")
    response.set_cookie(
        COOKIE_NAME,
        cookie_value(token),
        max_age=COOKIE_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    """Log the browser out."""
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")

"""The dashboard and every REST API endpoint require the admin token, on a running gateway.

The endpoints are taken from the gateway's own OpenAPI document (so a new /api route is covered
the day it lands) plus the dashboard pages. Without credentials, with a wrong bearer token, with a
forged or expired session cookie: 401 for the API, a redirect to the login form for pages, and no
data in the body. The right token is let in (the control).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import httpx
import pytest

from tests.security.conftest import SecureSystem

PAGES = ["/dashboard", "/dashboard/calls", "/dashboard/calls/some-call"]


def _api_paths(openapi: dict) -> list[str]:
    paths = []
    for path, operations in openapi["paths"].items():
        if path.startswith("/api") and "get" in operations:
            paths.append(re.sub(r"\{[^}]+\}", "some-id", path))
    return paths


@pytest.fixture(scope="module")
async def api_paths(secure_system: SecureSystem) -> list[str]:
    admin = {"Authorization": f"Bearer {secure_system.admin_token}"}
    async with httpx.AsyncClient(base_url=secure_system.gateway.url) as client:
        openapi = (await client.get("/openapi.json", headers=admin)).json()
    paths = _api_paths(openapi)
    assert paths, "the gateway documents no /api endpoint"
    return paths


def _forged_cookies(secure_system: SecureSystem) -> dict[str, str]:
    later = int(time.time()) + 3600
    earlier = int(time.time()) - 60
    token = secure_system.admin_token.encode()
    return {
        "garbage": "not-a-session",
        "wrong key": f"{later}.{hmac.new(b'guess', f'dashboard:{later}'.encode(), hashlib.sha256).hexdigest()}",
        "expired": f"{earlier}.{hmac.new(token, f'dashboard:{earlier}'.encode(), hashlib.sha256).hexdigest()}",
        "no signature": f"{later}.",
    }


def _refusals(secure_system: SecureSystem) -> dict[str, dict]:
    cases: dict[str, dict] = {
        "nothing": {},
        "wrong bearer": {"headers": {"Authorization": "Bearer wrong-token"}},
        "token prefix": {"headers": {"Authorization": f"Bearer {secure_system.admin_token[:-1]}"}},
        "basic auth": {"headers": {"Authorization": f"Basic {secure_system.admin_token}"}},
        "token as query": {"params": {"token": secure_system.admin_token}},
    }
    for name, value in _forged_cookies(secure_system).items():
        cases[f"cookie: {name}"] = {"cookies": {"cc_admin": value}}
    # Raw bytes outside ASCII (the server reads headers as latin-1): refused, never a 500.
    later = int(time.time()) + 3600
    cases["cookie: non-ASCII signature"] = {
        "headers": {"Cookie": f"cc_admin={later}.\u00e9".encode()}
    }
    return cases


def _from(address: str) -> httpx.AsyncHTTPTransport:
    """A transport whose connections come from ``address`` (any 127.x address is loopback), so a
    test's wrong tokens lock out its own source address only."""
    return httpx.AsyncHTTPTransport(local_address=address)


async def test_api_endpoints_refuse_without_the_admin_token(
    secure_system: SecureSystem, api_paths: list[str]
) -> None:
    # Each path from an address of its own: wrong Bearer tokens are throttled per address.
    for number, path in enumerate(api_paths):
        async with httpx.AsyncClient(
            base_url=secure_system.gateway.url, timeout=10, transport=_from(f"127.0.1.{number + 1}")
        ) as client:
            for case, kwargs in _refusals(secure_system).items():
                client.cookies.clear()
                response = await client.get(path, **kwargs)
                assert response.status_code == 401, (path, case, response.status_code)
                assert "call_id" not in response.text, (path, case)


async def test_dashboard_pages_send_strangers_to_the_login_form(
    secure_system: SecureSystem,
) -> None:
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=10) as client:
        for path in PAGES:
            for case, kwargs in _refusals(secure_system).items():
                client.cookies.clear()
                response = await client.get(path, **kwargs)
                assert response.status_code in (302, 303, 307, 401), (path, case)
                if response.is_redirect:
                    assert response.headers["location"].startswith("/dashboard/login"), (
                        path,
                        case,
                    )


async def test_the_admin_token_is_let_in(secure_system: SecureSystem, api_paths: list[str]) -> None:
    headers = {"Authorization": f"Bearer {secure_system.admin_token}"}
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=10) as client:
        for path in [p for p in api_paths if "some-id" not in p and not p.endswith("/events")]:
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code, response.text)
        for path in PAGES[:2]:
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, path
        login = await client.post(
            "/dashboard/login", data={"token": secure_system.admin_token, "next": "/dashboard"}
        )
        assert login.status_code == 303 and "cc_admin" in login.cookies
        assert secure_system.admin_token not in login.headers.get("set-cookie", "")


async def test_login_form_is_not_an_open_redirect_and_locks_out_guessing(
    secure_system: SecureSystem,
) -> None:
    async with httpx.AsyncClient(base_url=secure_system.gateway.url, timeout=10) as client:
        ok = await client.post(
            "/dashboard/login",
            data={"token": secure_system.admin_token, "next": "//evil.example/x"},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"
        codes = []
        for _ in range(12):
            guess = await client.post("/dashboard/login", data={"token": "guess"})
            codes.append(guess.status_code)
        assert set(codes) <= {401, 429} and codes[-1] == 429, codes
        # Locked out: even the right token is refused from this address for now.
        locked = await client.post("/dashboard/login", data={"token": secure_system.admin_token})
        assert locked.status_code == 429


async def test_wrong_bearer_tokens_on_the_api_are_throttled_per_address(
    secure_system: SecureSystem,
) -> None:
    """Guessing the admin token over ``/api`` is locked out like the login form (point 8)."""
    right = {"Authorization": f"Bearer {secure_system.admin_token}"}
    async with httpx.AsyncClient(
        base_url=secure_system.gateway.url, timeout=10, transport=_from("127.0.2.1")
    ) as guesser:
        codes = []
        for attempt in range(12):
            guess = await guesser.get(
                "/api/calls", headers={"Authorization": f"Bearer guess-{attempt}"}
            )
            codes.append(guess.status_code)
        assert codes[0] == 401 and codes[-1] == 429, codes
        # Locked out: even the right token is refused from this address for now.
        assert (await guesser.get("/api/calls", headers=right)).status_code == 429
    async with httpx.AsyncClient(
        base_url=secure_system.gateway.url, timeout=10, transport=_from("127.0.2.2")
    ) as other:
        assert (await other.get("/api/calls", headers=right)).status_code == 200


async def test_api_docs_are_for_admins_only(secure_system: SecureSystem) -> None:
    """``/docs`` and ``/openapi.json`` are not served to strangers by default (point 8)."""
    right = {"Authorization": f"Bearer {secure_system.admin_token}"}
    async with httpx.AsyncClient(
        base_url=secure_system.gateway.url, timeout=10, transport=_from("127.0.2.3")
    ) as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            stranger = await client.get(path)
            assert stranger.status_code in (401, 404), (path, stranger.status_code)
            assert "/api/calls" not in stranger.text
        assert "/api/calls" in (await client.get("/openapi.json", headers=right)).json()["paths"]
        assert (await client.get("/docs", headers=right)).status_code == 200

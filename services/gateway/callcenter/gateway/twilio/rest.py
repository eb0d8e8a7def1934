"""The twilio REST client, asynchronous, with a configurable base URL.

The twilio package addresses ``https://<product>.twilio.com`` and lets a custom ``HttpClient``
carry the requests. :class:`BaseUrlHttpClient` sends them over httpx and, when
``twilio.api_base_url`` is set, replaces the scheme and host by that base (keeping path and query),
so a local stand-in (or a proxy) receives them. The client is asynchronous: call the ``*_async``
methods (``client.messages.create_async(…)``, ``client.calls(sid).update_async(…)``); the
synchronous ones would hand back an un-awaited coroutine.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from callcenter.common.config.sections import TwilioSettings

_twilio_logger = logging.getLogger("twilio.http_client")

REQUEST_TIMEOUT_S = 10.0


class BaseUrlHttpClient(AsyncHttpClient):
    """An asynchronous ``HttpClient`` for the twilio package, optionally re-based."""

    def __init__(self, *, base_url: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S):
        super().__init__(logger=_twilio_logger, is_async=True, timeout=timeout_s)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._http = httpx.AsyncClient(timeout=timeout_s)

    def rebase(self, url: str) -> str:
        """``url`` with scheme and host replaced by the configured base (unchanged without one)."""
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one API request (the twilio package builds it; we only carry it)."""
        response = await self._http.request(
            method.upper(),
            self.rebase(uri),
            params=params,  # type: ignore[arg-type]
            data=data,  # type: ignore[arg-type]
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()


def rest_client(settings: TwilioSettings) -> Client | None:
    """The REST client for the configured account, or None when the account is not configured."""
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    if not settings.account_sid or not token:
        return None
    return Client(
        username=settings.account_sid,
        password=token,
        account_sid=settings.account_sid,
        http_client=BaseUrlHttpClient(base_url=settings.api_base_url),
    )


async def close_rest_client(client: Client | None) -> None:
    """Release the client's connections (on shutdown)."""
    if client is not None and isinstance(client.http_client, BaseUrlHttpClient):
        await client.http_client.close()

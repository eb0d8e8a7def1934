"""The life of a vendor stand-in served by aiohttp on a local port (Deepgram, ElevenLabs)."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class AiohttpStandIn:
    """Subclasses add their routes in :meth:`routes`; ``async with`` starts and stops it."""

    def __init__(self, *, api_key: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.refuse = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The WebSocket base URL."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """The HTTP base URL."""
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        """Add the vendor's endpoints."""
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""The tools service as this service sees it: the shared client plus a cached schema."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats.errors
from opentelemetry import trace

from callcenter.common.bus import Bus
from callcenter.common.clients import ToolsClient
from callcenter.common.logging import get_logger

log = get_logger(__name__)
tracer = trace.get_tracer("callcenter.conversation")


class CachedToolsClient(ToolsClient):
    """:class:`ToolsClient` whose ``tools.list`` is cached for ``ttl_s`` and kept when a refresh fails."""

    def __init__(self, *, bus: Bus, ttl_s: float, call_timeout_s: float) -> None:
        super().__init__(bus=bus, timeout_s=call_timeout_s)
        self._ttl = ttl_s
        self._schema: list[dict[str, Any]] = []
        self._fetched_at = float("-inf")
        self._refresh_lock = asyncio.Lock()

    @property
    def names(self) -> set[str]:
        """Names of the tools in the cached schema."""
        return {tool["function"]["name"] for tool in self._schema if "function" in tool}

    def _fresh(self) -> bool:
        return bool(self._schema) and time.monotonic() - self._fetched_at < self._ttl

    async def schema(self, *, force: bool = False) -> list[dict[str, Any]]:
        """The tools schema (OpenAI function tools).

        With nothing cached yet (the tools service was not up when this replica started) every
        call asks again: a turn must not run without tools because of a start-up race.
        """
        if not force and self._fresh():
            return self._schema
        async with self._refresh_lock:
            if not force and self._fresh():
                return self._schema
            try:
                with tracer.start_as_current_span("tools.list"):
                    listed = await self.list()
                self._schema = listed.tools
                self._fetched_at = time.monotonic()
                log.debug("tools schema refreshed", tools=len(self._schema))
            except (nats.errors.Error, TimeoutError, ValueError) as exc:
                # keep serving the schema we had; try again soon
                self._fetched_at = time.monotonic() - self._ttl + min(self._ttl, 2.0)
                log.warning("tools.list failed", error=type(exc).__name__)
        return self._schema

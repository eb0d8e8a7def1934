"""A background loop that runs one piece of work every few seconds, held and cancellable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from callcenter.common.logging import get_logger

log = get_logger(__name__)


class Periodic:
    """Runs ``work()`` every ``interval_s()`` seconds until stopped; a failed pass is logged."""

    def __init__(
        self, *, name: str, work: Callable[[], Awaitable[Any]], interval_s: Callable[[], float]
    ) -> None:
        self._name = name
        self._work = work
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin in the background."""
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Stop (waits for the loop to end)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            try:
                await self._work()
            except Exception:
                log.exception("periodic pass failed", loop=self._name)
            await asyncio.sleep(self._interval_s())

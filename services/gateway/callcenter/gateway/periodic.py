"""A background loop that runs one piece of work every few seconds, held and cancellable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

from callcenter.common.logging import get_logger

log = get_logger(__name__)

PASSES = Counter(
    "gateway_background_passes_total",
    "Finished passes of a gateway background loop (session reaper, inbox sweeper)",
    ["loop"],
)


class Periodic:
    """Runs ``work()`` every ``interval_s()`` seconds until stopped; a failed pass is logged.

    Stopping lets a pass that is under way finish (up to ``stop_grace_s``) instead of cancelling
    it half-way through a database call: a connection cancelled inside ``pool.acquire`` can keep
    the pool from ever closing (asyncpg#547).
    """

    def __init__(
        self,
        *,
        name: str,
        work: Callable[[], Awaitable[Any]],
        interval_s: Callable[[], float],
        stop_grace_s: float = 5.0,
    ) -> None:
        self._name = name
        self._work = work
        self._interval_s = interval_s
        self._stop_grace_s = stop_grace_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin in the background."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Stop after the pass under way (cancelled only if it overruns ``stop_grace_s``)."""
        if self._task is None:
            return
        self._stopping.set()
        _, pending = await asyncio.wait({self._task}, timeout=self._stop_grace_s)
        if pending:
            log.warning("periodic pass overran its stop grace; cancelled", loop=self._name)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._work()
            except Exception:
                log.exception("periodic pass failed", loop=self._name)
            PASSES.labels(loop=self._name).inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s())

"""Connecting to NATS with reconnects and clear logs."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client as NatsClient

from callcenter.common.config.sections import NatsSettings
from callcenter.common.logging import get_logger

log = get_logger(__name__)

START_HINT = (
    "start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server "
    "-- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server  (or `docker compose up -d nats`)"
)


async def connect_nats(
    settings: NatsSettings, *, name: str, initial_attempts: int = 30
) -> NatsClient:
    """Connect to NATS, retrying the first connection, then reconnecting forever.

    Args:
        settings: the ``nats`` config section.
        name: client name shown in the server's connection list.
        initial_attempts: how many times to try the first connection (one per reconnect wait).

    Raises:
        ConnectionError: NATS was not reachable after ``initial_attempts``.

    """

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", error=str(exc) or type(exc).__name__)

    async def on_disconnected() -> None:
        log.warning("nats disconnected", url=settings.url)

    async def on_reconnected() -> None:
        log.info("nats reconnected", url=settings.url)

    async def on_closed() -> None:
        log.info("nats connection closed")

    last: Exception | None = None
    for attempt in range(1, initial_attempts + 1):
        try:
            nc = await nats.connect(
                servers=[settings.url],
                name=name,
                connect_timeout=settings.connect_timeout_s,
                reconnect_time_wait=settings.reconnect_wait_s,
                max_reconnect_attempts=settings.max_reconnect_attempts,
                allow_reconnect=True,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
                closed_cb=on_closed,
            )
        except Exception as exc:  # nats raises several unrelated types here
            last = exc
            log.warning(
                "nats unreachable",
                url=settings.url,
                attempt=attempt,
                error=str(exc) or type(exc).__name__,
            )
            await asyncio.sleep(settings.reconnect_wait_s)
            continue
        log.info("nats connected", url=settings.url, client=name)
        return nc
    raise ConnectionError(f"NATS is not reachable at {settings.url}: {last}; {START_HINT}")

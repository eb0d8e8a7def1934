"""A transactional outbox: events a skill records with its effect, published after the commit.

A skill calls :func:`record` on the connection of its own transaction, so the event exists if and
only if the effect committed. :class:`OutboxRelay` (held by the tools service) publishes pending
rows when kicked after a tool call and on a periodic sweep, with ``Nats-Msg-Id`` = the row's
``event_id``: a row published twice (a crash between publish and mark) is stored once by JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import asyncpg

from callcenter.common.bus import Bus
from callcenter.common.events import EVENT_TYPES, Event
from callcenter.common.logging import get_logger

log = get_logger(__name__)

BATCH = 100


async def record(conn: asyncpg.Connection, event: Event) -> bool:
    """Queue ``event`` for publishing in ``conn``'s transaction; False when it was queued before."""
    inserted = await conn.fetchval(
        """
        INSERT INTO event_outbox (event_id, subject, call_id, body) VALUES ($1, $2, $3, $4)
        ON CONFLICT (event_id) DO NOTHING RETURNING 1
        """,
        event.event_id,
        event.subject,
        event.call_id,
        json.loads(event.model_dump_json()),
    )
    return inserted is not None


async def publish_pending(db: asyncpg.Pool, bus: Bus) -> int:
    """Publish every pending row (oldest first) and mark it; returns how many were published."""
    published = 0
    while True:
        async with db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT event_id, subject, body FROM event_outbox WHERE published_at IS NULL
                ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED
                """,
                BATCH,
            )
            for row in rows:
                model = EVENT_TYPES.get(row["subject"])
                if model is None:  # pragma: no cover - only our own code writes rows
                    log.error("outbox row with an unknown subject", subject=row["subject"])
                    continue
                await bus.publish(model.model_validate(row["body"]))
                # A one-time code leaves the table once it is on the bus.
                await conn.execute(
                    "UPDATE event_outbox SET published_at = now(), "
                    "body = body #- '{details,code_sealed}' WHERE event_id = $1",
                    row["event_id"],
                )
                published += 1
        if len(rows) < BATCH:
            return published


class OutboxRelay:
    """Publishes the outbox: right after a tool call (:meth:`kick`) and every ``sweep_s``."""

    def __init__(self, *, db: asyncpg.Pool, bus: Bus, sweep_s: float) -> None:
        self.db = db
        self.bus = bus
        self.sweep_s = sweep_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Publish soon (called after every tool call that may have recorded an event)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the relay loop (its task is held and cancelled by :meth:`stop`)."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Publish what is pending one last time, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await publish_pending(self.db, self.bus)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.sweep_s)
            self._wake.clear()
            try:
                count = await publish_pending(self.db, self.bus)
                if count:
                    log.info("outbox published", events=count)
            except Exception as exc:
                log.warning("outbox publish failed; retrying on the next sweep", error=repr(exc))

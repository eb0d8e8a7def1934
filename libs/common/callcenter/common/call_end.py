"""call.ended, once per call, whichever side notices the end first.

The protocol (docs/architecture.md): claim ``SET {key_prefix}call:{call_id}:ended NX`` in Redis,
then update the ``calls`` row and publish ``CallEnded`` with ``event_id = "ended-" + call_id``;
the side that finds the claim taken does nothing, and a retried publish is deduplicated by the
fixed id. An end that fails half-way is marked ``ending`` in PostgreSQL for the gateway's
reapers to finish. Used by the voice pipeline (its media stream ended) and usable by the gateway (its
``calls.end_call`` does the same for chat, SMS and Twilio's status callback), so both sides share
one implementation without importing each other.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis

from callcenter.common.bus import Bus
from callcenter.common.events import CallEnded, Channel
from callcenter.common.logging import get_logger

log = get_logger(__name__)

ENDED_CLAIM_TTL_S = 7 * 24 * 3600


async def record_turn_count(
    redis: aioredis.Redis, *, key_prefix: str, call_id: str, turns: int
) -> None:
    """Keep ``call:{id}:turns`` current, so whichever side ends the call reports it."""
    await redis.set(f"{key_prefix}call:{call_id}:turns", turns, ex=ENDED_CLAIM_TTL_S)


async def end_call(
    *,
    bus: Bus,
    redis: aioredis.Redis,
    db: asyncpg.Pool,
    key_prefix: str,
    call_id: str,
    reason: str,
    turn_count: int | None = None,
    channel: Channel = "voice",
    started_at: datetime | None = None,
) -> bool:
    """Publish call.ended unless another side already did; return whether we did.

    ``turn_count`` None means: the count kept in ``call:{id}:turns``. If claiming, recording or
    publishing fails, the claim is released and the row marked ``ending`` so a later attempt (the
    gateway's reapers) finishes the job; a publish that did get through is then deduplicated by the
    fixed event id.
    """
    claim = f"{key_prefix}call:{call_id}:ended"
    claimed = False
    try:
        if not await redis.set(claim, reason, nx=True, ex=ENDED_CLAIM_TTL_S):
            log.debug("call end already claimed", call_id=call_id, reason=reason)
            return False
        claimed = True
        if turn_count is None:
            turn_count = int(await redis.get(f"{key_prefix}call:{call_id}:turns") or 0)
        row = await db.fetchrow(
            "SELECT started_at, customer_id FROM calls WHERE call_id = $1", call_id
        )
        now = datetime.now(UTC)
        began = started_at or (row["started_at"] if row else now)
        duration = max((now - began).total_seconds(), 0.0)
        await db.execute(
            """
            UPDATE calls SET status = 'ended', ended_at = $2, end_reason = $3, duration_s = $4,
                   turn_count = $5
            WHERE call_id = $1
            """,
            call_id,
            now,
            reason,
            duration,
            turn_count,
        )
        await bus.publish(
            CallEnded(
                event_id=f"ended-{call_id}",
                call_id=call_id,
                channel=channel,
                reason=reason,
                duration_s=duration,
                turn_count=turn_count,
                customer_id=row["customer_id"] if row else None,
            )
        )
    except BaseException:
        await _leave_for_retry(
            redis=redis, db=db, claim=claim if claimed else None, call_id=call_id, reason=reason
        )
        raise
    log.info(
        "call ended",
        call_id=call_id,
        reason=reason,
        turns=turn_count,
        duration_s=round(duration, 1),
    )
    return True


async def _leave_for_retry(
    *, redis: aioredis.Redis, db: asyncpg.Pool, claim: str | None, call_id: str, reason: str
) -> None:
    """An end that failed half-way: give the claim back and mark the row ``ending``.

    The mark lives in PostgreSQL because what failed may well be Redis; the gateway's reapers sweep
    ``ending`` rows of every channel and end them through :func:`end_call` again (the fixed event
    id deduplicates a publish that did get through). Either step may fail too: best effort.
    """
    if claim is not None:
        try:
            await redis.delete(claim)
        except Exception:
            log.warning("call end claim not released", call_id=call_id)
    try:
        await db.execute(
            "UPDATE calls SET status = 'ending', end_reason = $2 WHERE call_id = $1",
            call_id,
            reason,
        )
    except Exception:
        log.warning("call not marked for a later end", call_id=call_id)

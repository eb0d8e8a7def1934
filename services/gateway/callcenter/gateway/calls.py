"""The life of a call as the edge sees it: start (row + call.started) and end (exactly once)."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.common.events import CallEnded, CallStarted, Channel, new_id
from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps

log = get_logger(__name__)

ENDED_CLAIM_TTL_S = 7 * 24 * 3600


async def start_call(
    deps: GatewayDeps,
    *,
    channel: Channel,
    call_id: str | None = None,
    from_number: str | None = None,
    to_number: str | None = None,
    customer_hint: str | None = None,
    provider_ids: dict[str, str] | None = None,
) -> CallStarted:
    """Record the call and publish call.started (idempotent per call_id)."""
    event = CallStarted(
        event_id=f"started-{call_id}" if call_id else new_id(),
        call_id=call_id or new_id(),
        channel=channel,
        from_number=from_number,
        to_number=to_number,
        customer_hint=customer_hint,
        provider_ids=provider_ids or {},
    )
    await deps.db.execute(
        """
        INSERT INTO calls (call_id, channel, from_number, to_number, provider_ids, started_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (call_id) DO NOTHING
        """,
        event.call_id,
        channel,
        from_number,
        to_number,
        event.provider_ids,
        event.occurred_at,
    )
    await deps.bus.publish(event)
    log.info("call started", call_id=event.call_id, channel=channel)
    return event


async def end_call(
    deps: GatewayDeps,
    *,
    call_id: str,
    channel: Channel,
    reason: str,
    turn_count: int | None = None,
    started_at: datetime | None = None,
) -> bool:
    """Publish call.ended once per call, whichever side notices first; return whether we did.

    The Redis NX claim makes concurrent enders (two replicas, the media socket and the status
    callback) agree on one; the fixed event id makes a retried publish a duplicate JetStream drops.
    If recording or publishing fails, the claim is released so a later attempt finishes the job.
    """
    claim = deps.key(f"call:{call_id}:ended")
    if not await deps.redis.set(claim, reason, nx=True, ex=ENDED_CLAIM_TTL_S):
        log.debug("call end already claimed", call_id=call_id, reason=reason)
        return False
    try:
        duration, turns, customer_id = await _record_end(
            deps, call_id=call_id, reason=reason, turn_count=turn_count, started_at=started_at
        )
        await deps.bus.publish(
            CallEnded(
                event_id=f"ended-{call_id}",
                call_id=call_id,
                channel=channel,
                reason=reason,
                duration_s=duration,
                turn_count=turns,
                customer_id=customer_id,
            )
        )
    except BaseException:
        await deps.redis.delete(claim)
        raise
    log.info(
        "call ended", call_id=call_id, reason=reason, turns=turns, duration_s=round(duration, 1)
    )
    return True


async def _record_end(
    deps: GatewayDeps,
    *,
    call_id: str,
    reason: str,
    turn_count: int | None,
    started_at: datetime | None,
) -> tuple[float, int, str | None]:
    """Close the call's row; return its duration, turn count and customer."""
    row = await deps.db.fetchrow(
        "SELECT started_at, customer_id FROM calls WHERE call_id = $1", call_id
    )
    now = datetime.now(UTC)
    began = started_at or (row["started_at"] if row else now)
    duration = max((now - began).total_seconds(), 0.0)
    if turn_count is None:
        turn_count = int(await deps.redis.get(deps.key(f"call:{call_id}:turns")) or 0)
    await deps.db.execute(
        """
        UPDATE calls
        SET status = 'ended', ended_at = $2, end_reason = $3, duration_s = $4, turn_count = $5
        WHERE call_id = $1
        """,
        call_id,
        now,
        reason,
        duration,
        turn_count,
    )
    return duration, turn_count, (row["customer_id"] if row else None)


async def record_turn(deps: GatewayDeps, *, call_id: str, turn_index: int) -> None:
    """Remember how many turns a call has had, for call.ended's turn_count."""
    key = deps.key(f"call:{call_id}:turns")
    current = int(await deps.redis.get(key) or 0)
    if turn_index + 1 > current:
        await deps.redis.set(key, turn_index + 1, ex=ENDED_CLAIM_TTL_S)

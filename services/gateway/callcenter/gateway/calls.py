"""The life of a call as the edge sees it: start (row + call.started) and end (exactly once)."""

from __future__ import annotations

from datetime import datetime

from callcenter.common.call_end import ENDED_CLAIM_TTL_S
from callcenter.common.call_end import end_call as common_end_call
from callcenter.common.events import CallStarted, Channel, new_id
from callcenter.common.logging import get_logger
from callcenter.gateway.deps import GatewayDeps

log = get_logger(__name__)


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

    The protocol is shared with the voice pipeline: :func:`callcenter.common.call_end.end_call`.
    """
    return await common_end_call(
        bus=deps.bus,
        redis=deps.redis,
        db=deps.db,
        key_prefix=deps.config.redis.key_prefix,
        call_id=call_id,
        reason=reason,
        turn_count=turn_count,
        channel=channel,
        started_at=started_at,
    )


#: Raise ``KEYS[1]`` to ``ARGV[1]`` (never lower it), with the TTL ``ARGV[2]``: one round trip.
_RAISE_TURNS = """
local turns = tonumber(ARGV[1])
if turns > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], turns, 'EX', ARGV[2])
end
"""


async def record_turn(deps: GatewayDeps, *, call_id: str, turn_index: int) -> None:
    """Remember how many turns a call has had, for call.ended's turn_count."""
    key = deps.key(f"call:{call_id}:turns")
    await deps.redis.eval(_RAISE_TURNS, 1, key, turn_index + 1, ENDED_CLAIM_TTL_S)

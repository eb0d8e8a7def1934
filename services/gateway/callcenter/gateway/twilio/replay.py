"""Whether a (possibly replayed) voice webhook is for a call that has already ended.

A signed ``/twilio/voice`` request can be captured and posted again; Twilio itself retries one
that timed out. A retry for a live call keeps its call id (and may get a fresh stream token),
but a request for a call that has ended must not start it again: the shared
``call:{id}:ended`` claim or the ``calls`` row (found by CallSid, so it holds after the Redis
mapping expires) says so.
"""

from __future__ import annotations

from callcenter.gateway.deps import GatewayDeps


async def call_has_ended(deps: GatewayDeps, *, call_id: str, call_sid: str) -> bool:
    """Whether ``call_id`` (or any recorded call of ``call_sid``) is no longer active."""
    if await deps.redis.exists(deps.key(f"call:{call_id}:ended")):
        return True
    ended = await deps.db.fetchval(
        """
        SELECT true FROM calls
        WHERE (call_id = $1 OR provider_ids->>'twilio_call_sid' = $2) AND status <> 'active'
        LIMIT 1
        """,
        call_id,
        call_sid,
    )
    return bool(ended)

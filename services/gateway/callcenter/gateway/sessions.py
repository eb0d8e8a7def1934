"""Open conversations across gateway replicas, and the reaper that ends idle ones.

Each open chat or SMS conversation (and each browser call until its browser connects) is a member ``<channel>:<call_id>`` of the Redis sorted set
``sessions:active`` scored by its last activity. Every gateway replica runs :class:`SessionReaper`;
ending goes through :func:`callcenter.gateway.calls.end_call`, whose Redis claim makes sure only
one replica publishes call.ended, however many see the session expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from callcenter.common.events import Channel
from callcenter.common.handoff import holds, is_person, owner_key, parse_owner
from callcenter.common.logging import bind_call, get_logger
from callcenter.gateway.calls import end_call
from callcenter.gateway.deps import GatewayDeps
from callcenter.gateway.periodic import Periodic

log = get_logger(__name__)

ACTIVE_KEY = "sessions:active"
_process_secret = secrets.token_bytes(32)


def _secret(deps: GatewayDeps) -> bytes:
    configured = deps.config.gateway.session_secret
    return configured.get_secret_value().encode() if configured else _process_secret


def resume_token(deps: GatewayDeps, call_id: str) -> str:
    """A token that lets the visitor who holds it reconnect to ``call_id``."""
    return hmac.new(_secret(deps), call_id.encode(), hashlib.sha256).hexdigest()


def valid_resume_token(deps: GatewayDeps, call_id: str, token: str) -> bool:
    """Whether ``token`` was issued for ``call_id``."""
    # Compared as bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    return hmac.compare_digest(resume_token(deps, call_id).encode(), token.encode())


async def touch(
    deps: GatewayDeps, *, channel: Channel, call_id: str, idle_timeout_s: float
) -> None:
    """Mark the session active now; it expires ``idle_timeout_s`` after the last touch."""
    await deps.redis.zadd(
        deps.key(ACTIVE_KEY), {f"{channel}:{call_id}": time.time() + idle_timeout_s}
    )


async def touch_and_check_person(
    deps: GatewayDeps, *, channel: Channel, call_id: str, idle_timeout_s: float
) -> bool:
    """:func:`touch`, and whether a person holds the conversation, in one Redis round trip."""
    async with deps.redis.pipeline(transaction=False) as pipe:
        pipe.zadd(deps.key(ACTIVE_KEY), {f"{channel}:{call_id}": time.time() + idle_timeout_s})
        pipe.get(owner_key(deps.config.redis.key_prefix, call_id))
        _, owner = await pipe.execute()
    return is_person(parse_owner(owner))


async def forget(deps: GatewayDeps, *, channel: Channel, call_id: str) -> None:
    """The session ended: stop watching it."""
    await deps.redis.zrem(deps.key(ACTIVE_KEY), f"{channel}:{call_id}")


async def is_active(deps: GatewayDeps, *, channel: Channel, call_id: str) -> bool:
    """Whether the session is open (not ended, not expired)."""
    score = await deps.redis.zscore(deps.key(ACTIVE_KEY), f"{channel}:{call_id}")
    return score is not None and score > time.time()


async def finish_pending_ends(deps: GatewayDeps, *, batch: int = 100) -> int:
    """End calls marked ``ending`` (their end failed half-way, on any channel or service).

    Returns:
        how many this replica ended.

    """
    rows = await deps.db.fetch(
        "SELECT call_id, channel, end_reason FROM calls WHERE status = 'ending' "
        "ORDER BY started_at LIMIT $1",
        batch,
    )
    ended = 0
    for row in rows:
        with bind_call(row["call_id"]):
            try:
                if await end_call(
                    deps,
                    call_id=row["call_id"],
                    channel=row["channel"],
                    reason=row["end_reason"] or "ended",
                ):
                    ended += 1
            except Exception:
                log.exception("pending call end failed again; will retry")
    return ended


async def reap_once(deps: GatewayDeps) -> int:
    """End every session whose deadline passed; return how many this replica ended."""
    ended = 0
    try:
        ended += await finish_pending_ends(deps)
    except Exception:
        log.exception("ending sweep failed; will retry")
    return ended + await _reap_idle(deps)


async def _reap_idle(deps: GatewayDeps) -> int:
    now = time.time()
    expired = await deps.redis.zrangebyscore(deps.key(ACTIVE_KEY), "-inf", now)
    ended = 0
    for member in expired:
        channel, _, call_id = member.partition(":")
        if await holds(deps.redis, key_prefix=deps.config.redis.key_prefix, call_id=call_id):
            continue  # a customer waiting for, or talking with, a person is not idle
        if channel == "web_voice" and await deps.redis.exists(deps.key(f"call:{call_id}:stream")):
            # the browser connected: the voice pipeline holds the call and ends it
            await deps.redis.zrem(deps.key(ACTIVE_KEY), member)
            continue
        with bind_call(call_id):
            try:
                if await end_call(deps, call_id=call_id, channel=channel, reason="idle_timeout"):  # type: ignore[arg-type]
                    ended += 1
            except Exception:
                log.exception("idle session not ended; will retry")
                continue
        await deps.redis.zrem(deps.key(ACTIVE_KEY), member)
    return ended


class SessionReaper(Periodic):
    """Periodically ends idle sessions (one per gateway replica)."""

    def __init__(self, *, deps: GatewayDeps) -> None:
        super().__init__(
            name="session-reaper",
            work=lambda: reap_once(deps),
            interval_s=lambda: deps.config.gateway.reaper_interval_s,
        )

"""What the voice pipeline trusts about a call, and the one stream a token may open.

A media socket's ``start`` message is written by whoever holds the socket: its
``customParameters`` are not signed (only the stream token among them is). So the pipeline takes
nothing about the call from them. It checks the gateway's signed token (call_id + CallSid +
expiry), then reads the caller number, called number and CallSid from the gateway's own row of
that call in ``calls``. The token opens at most one stream: the first socket claims
``{prefix}call:{call_id}:stream`` in Redis (``SET NX``), and a second socket with the same (or a
fresh) token for that call is refused. A call that has ended (the shared ``call:{id}:ended``
claim, or a row no longer ``active``) gets no stream at all.

A call whose replica died mid-call is resumed (``callcenter.common.call_resume``): the gateway's
n-th resume grant signs a token for resume n, which opens one stream too (its own claim
``call:{id}:stream:{n}``), and only while n is the latest grant: a token of an earlier stream,
replayed, is refused even when its own claim was never taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis

from callcenter.common.call_end import ENDED_CLAIM_TTL_S
from callcenter.common.call_resume import granted_resumes, stream_claim_key
from callcenter.common.config import CallCenterConfig
from callcenter.common.stream_token import (
    InvalidStreamToken,
    stream_token_secret,
    verify_stream_grant,
)


class UntrustedStream(Exception):
    """The socket may not open a stream: bad token, unknown or ended call, or already streaming."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedCall:
    """A call as the gateway recorded it when Twilio's signed webhook arrived."""

    call_id: str
    call_sid: str
    from_number: str | None
    to_number: str | None
    #: 0 for the call's first stream, n for its n-th resumed stream (no greeting then)
    resume: int = 0
    #: the caller turns the call's earlier streams had (``call:{id}:turns``), for call.ended
    turns_before: int = 0
    #: when the gateway answered the call (``calls.started_at``): a resumed stream's call has
    #: been going since then, not since this stream opened
    started_at: datetime | None = None

    def time_left_s(self, max_call_s: float) -> float:
        """What is left of ``max_call_s`` for the whole call, across its resumed streams."""
        if self.started_at is None:
            return max_call_s
        return max(max_call_s - (datetime.now(UTC) - self.started_at).total_seconds(), 0.0)


async def resolve_trusted_call(
    *,
    config: CallCenterConfig,
    redis: aioredis.Redis,
    db: asyncpg.Pool,
    token: str | None,
    call_sid: str,
) -> TrustedCall:
    """The call a socket's stream token opens, claimed for this socket.

    Args:
        config: the deployment's config (token secret, Redis key prefix).
        redis: for the one-stream claim and the shared call-ended claim.
        db: the ``calls`` table the gateway writes.
        token: the ``token`` custom parameter of the ``start`` message.
        call_sid: the ``start`` message's CallSid (the token must be for it).

    Raises:
        UntrustedStream: the token is invalid, the call is unknown, not a voice call of this
            CallSid, has ended, or already has its stream.

    """
    secret = stream_token_secret(config)
    if secret is None:
        raise UntrustedStream("no stream token secret configured")
    try:
        grant = verify_stream_grant(secret, token, call_sid=call_sid)
    except InvalidStreamToken as exc:
        raise UntrustedStream(str(exc)) from exc
    row = await claim_live_stream(
        config=config,
        redis=redis,
        db=db,
        call_id=grant.call_id,
        channel="voice",
        stream_key="twilio_call_sid",
        stream_id=call_sid,
        resume=grant.resume,
    )
    turns_before = 0
    if grant.resume:
        key = f"{config.redis.key_prefix}call:{grant.call_id}:turns"
        turns_before = int(await redis.get(key) or 0)
    return TrustedCall(
        call_id=grant.call_id,
        call_sid=call_sid,
        from_number=row["from_number"],
        to_number=row["to_number"],
        resume=grant.resume,
        turns_before=turns_before,
        started_at=row["started_at"],
    )


async def claim_live_stream(
    *,
    config: CallCenterConfig,
    redis: aioredis.Redis,
    db: asyncpg.Pool,
    call_id: str,
    channel: str,
    stream_key: str,
    stream_id: str,
    resume: int = 0,
) -> asyncpg.Record:
    """The gateway's row of a live call of ``channel`` and stream, claimed for this socket.

    Args:
        config: the deployment's config (Redis key prefix).
        redis: for the one-stream claim and the shared call-ended claim.
        db: the ``calls`` table the gateway writes.
        call_id: the call the (verified) token names.
        channel: the channel the gateway recorded the call under.
        stream_key: the ``provider_ids`` entry that names the call's stream.
        stream_id: the stream the token was signed for.
        resume: the (signed) resume number of the stream: 0 for the call's first.

    Raises:
        UntrustedStream: the call is unknown, of another channel or stream, has ended, already
            has this stream, or the resume is not the gateway's latest grant.

    """
    row = await db.fetchrow(
        "SELECT channel, from_number, to_number, provider_ids, status, started_at FROM calls"
        " WHERE call_id = $1",
        call_id,
    )
    provider_ids = row["provider_ids"] if row is not None else None
    if (
        row is None
        or row["channel"] != channel
        or not isinstance(provider_ids, dict)
        or provider_ids.get(stream_key) != stream_id
    ):
        raise UntrustedStream(f"no {channel} call of this stream was recorded by the gateway")
    prefix = config.redis.key_prefix
    if row["status"] != "active" or await redis.exists(f"{prefix}call:{call_id}:ended"):
        raise UntrustedStream("the call has ended")
    if resume and resume != await granted_resumes(redis, key_prefix=prefix, call_id=call_id):
        raise UntrustedStream("a stale resumed stream's token")
    if not await redis.set(
        stream_claim_key(prefix, call_id, resume), stream_id, nx=True, ex=ENDED_CLAIM_TTL_S
    ):
        raise UntrustedStream("this call already has its media stream")
    return row

"""A phone call outlives its voice replica: when a stream may be resumed, and which one.

A replica that dies mid-call (SIGKILL, OOM, node loss) closes the media socket without ending the
call; Twilio then requests the ``<Connect action>`` and the gateway answers a fresh ``<Connect>``
for the same call (``callcenter.gateway.routes.twilio_voice``). Two Redis keys, shared by the
gateway and the voice pipeline, decide it:

* ``{prefix}call:{id}:resumes`` — how many resumed streams the gateway has granted (``INCR`` per
  grant, so the n-th grant signs a token for resume n and a stale token is recognised);
* ``{prefix}call:{id}:closing`` — the pipeline is ending the call on purpose (goodbye, transfer,
  silence, shutdown): set *before* the socket closes, since the shared ``call:{id}:ended`` claim
  is taken only once the pipeline has stopped, after the socket closed.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from callcenter.common.call_end import ENDED_CLAIM_TTL_S


def resumes_key(key_prefix: str, call_id: str) -> str:
    """The count of resumed streams the gateway granted ``call_id``."""
    return f"{key_prefix}call:{call_id}:resumes"


def closing_key(key_prefix: str, call_id: str) -> str:
    """Set while (and after) the voice pipeline ends ``call_id`` deliberately."""
    return f"{key_prefix}call:{call_id}:closing"


def stream_claim_key(key_prefix: str, call_id: str, resume: int = 0) -> str:
    """The one-socket claim of a call's first stream (0) or of its n-th resumed stream."""
    base = f"{key_prefix}call:{call_id}:stream"
    return base if resume == 0 else f"{base}:{resume}"


async def mark_call_closing(
    redis: aioredis.Redis, *, key_prefix: str, call_id: str, reason: str
) -> None:
    """Say the call is being ended on purpose: its stream's end is not to be resumed."""
    await redis.set(closing_key(key_prefix, call_id), reason, ex=ENDED_CLAIM_TTL_S)


async def granted_resumes(redis: aioredis.Redis, *, key_prefix: str, call_id: str) -> int:
    """How many resumed streams the gateway has granted ``call_id`` so far."""
    return int(await redis.get(resumes_key(key_prefix, call_id)) or 0)


async def grant_resume(redis: aioredis.Redis, *, key_prefix: str, call_id: str) -> int:
    """Count one more resumed stream for ``call_id``; return its number (1 for the first)."""
    key = resumes_key(key_prefix, call_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, ENDED_CLAIM_TTL_S)
        granted, _ = await pipe.execute()
    return int(granted)

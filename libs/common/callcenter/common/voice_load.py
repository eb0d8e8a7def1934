"""Where voice replicas tell their load, so the gateway can turn a call away politely.

Each voice_pipeline replica writes ``{"active", "capacity", "at"}`` under its id in the Redis hash
``{key_prefix}voice:replicas`` every few seconds and whenever a call starts or ends. The gateway's
voice webhook asks :func:`voice_has_room` before sending a call to the media socket: when every
replica that reported lately is full, the caller hears an overflow message instead of a stream
that would be refused. Owned by voice_pipeline (the writer); read-only for the gateway.
"""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

KEY = "voice:replicas"
#: A report older than this is a replica that stopped (crashed, scaled down): ignored.
FRESH_S = 20.0


async def report_voice_load(
    redis: aioredis.Redis, *, key_prefix: str, replica: str, active: int, capacity: int
) -> None:
    """Record this replica's calls in progress and capacity."""
    body = json.dumps({"active": active, "capacity": capacity, "at": time.time()})
    await redis.hset(key_prefix + KEY, replica, body)


async def forget_voice_replica(redis: aioredis.Redis, *, key_prefix: str, replica: str) -> None:
    """This replica stops (its calls are ending): take it out of the count."""
    await redis.hdel(key_prefix + KEY, replica)


async def voice_has_room(redis: aioredis.Redis, *, key_prefix: str) -> bool:
    """Whether some voice replica can take another call.

    True when no replica reported lately (no evidence of overload: a deployment starting, or one
    whose replicas do not report): the call is tried rather than refused.
    """
    now = time.time()
    fresh = []
    for raw in (await redis.hgetall(key_prefix + KEY)).values():
        try:
            entry = json.loads(raw)
            if now - float(entry["at"]) <= FRESH_S:
                fresh.append((int(entry["active"]), int(entry["capacity"])))
        except (ValueError, KeyError, TypeError):
            continue
    return not fresh or any(active < capacity for active, capacity in fresh)


async def room_elsewhere(redis: aioredis.Redis, *, key_prefix: str, replica: str) -> int:
    """How many more calls the other replicas that reported lately can take (0: none known).

    Unlike :func:`voice_has_room`, no report is no room: a replica handing its calls over on
    shutdown needs evidence that another one takes them.
    """
    now = time.time()
    free = 0
    for name, raw in (await redis.hgetall(key_prefix + KEY)).items():
        if (name.decode() if isinstance(name, bytes) else name) == replica:
            continue
        try:
            entry = json.loads(raw)
            if now - float(entry["at"]) <= FRESH_S:
                free += max(int(entry["capacity"]) - int(entry["active"]), 0)
        except (ValueError, KeyError, TypeError):
            continue
    return free

"""Removing what a benchmark left in its namespace on the shared servers."""

from __future__ import annotations

import contextlib

import asyncpg
import redis.asyncio as aioredis

from callcenter.common.bus import Bus
from callcenter.common.config import CallCenterConfig


async def remove_namespace(config: CallCenterConfig) -> None:
    """Drop the schema, delete the streams and the Redis keys of ``config``'s namespace."""
    conn = await asyncpg.connect(config.database.url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{config.database.schema_name}" CASCADE')
    finally:
        await conn.close()
    bus = await Bus.connect(config.nats, name="bench-cleanup", ensure=False)
    for stream in (config.nats.stream, config.nats.dead_letter_stream):
        with contextlib.suppress(Exception):
            await bus.js.delete_stream(stream)
    await bus.drain()
    redis = aioredis.Redis.from_url(config.redis.url, decode_responses=True)
    try:
        async for key in redis.scan_iter(match=f"{config.redis.key_prefix}*"):
            await redis.delete(key)
    finally:
        await redis.aclose()
